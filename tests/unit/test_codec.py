"""Arguments round-trip through JSON (never pickle); what cannot is refused with the reason."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid

import pytest

from afterwork import ArgumentsDecodeError, NotStorableError
from afterwork._codec import NO_ARGUMENTS, decode, encode

from .codec_types import Color, Point, Server, typed, untyped, untyped_object, with_defaults

WHEN = dt.datetime(2026, 11, 24, 12, 30, tzinfo=dt.timezone.utc)


def test_plain_json_values_are_stored_as_they_are() -> None:
    payload = encode(with_defaults, (1,), {"c": 3, "d": {"k": [1, "x", None]}})
    assert json.loads(payload) == {"a": [1], "k": {"c": 3, "d": {"k": [1, "x", None]}}}
    assert decode(with_defaults, payload) == ([1], {"c": 3, "d": {"k": [1, "x", None]}})


def test_payloads_the_stdlib_wrote_still_decode() -> None:
    """Stored by an earlier afterwork (stdlib `json.dumps`): escapes the faster parser refuses
    (a lone surrogate), non-finite and huge numbers all read back as they were written."""
    values = ["\ud800 lone", float("inf"), 10**30, "é", {"n": [None, True]}]
    payload = json.dumps({"a": values, "k": {"c": -0.5}})
    assert decode(with_defaults, payload) == (values, {"c": -0.5})


def test_a_call_without_arguments_reads_back_as_new_empty_arguments_each_time() -> None:
    payload = encode(with_defaults, (), {})
    assert payload == NO_ARGUMENTS  # the payload `decode` reads without parsing
    first, second = decode(with_defaults, payload), decode(with_defaults, payload)
    assert first == second == ([], {})
    first[0].append(1)  # one task's arguments are never another's
    assert second == ([], {})


def test_models_dataclasses_datetimes_uuids_decimals_enums_round_trip_by_annotation() -> None:
    server = Server(hostname="db1", cpus=8, seen=WHEN)
    key = uuid.uuid4()
    args = (server, Point(1, 2), WHEN, key, decimal.Decimal("10.25"), Color.BLUE, Point(3, 4))
    kwargs = {"tag": Color.RED}
    back_args, back_kwargs = decode(typed, encode(typed, args, kwargs))
    assert tuple(back_args) == args
    assert back_kwargs == kwargs
    assert type(back_args[5]) is Color and type(back_args[4]) is decimal.Decimal


def test_unannotated_stdlib_values_round_trip_by_tag() -> None:
    key = uuid.uuid4()
    args = (WHEN, key, decimal.Decimal("1.10"), dt.date(2026, 1, 2))
    back, _ = decode(untyped, encode(untyped, args, {}))
    assert tuple(back) == args
    assert str(back[2]) == "1.10"


def test_unannotated_object_is_not_storable_and_says_why() -> None:
    with pytest.raises(NotStorableError, match=r"'thing'.*no type annotation"):
        encode(untyped_object, (Point(1, 2),), {})


def test_value_that_does_not_fit_its_annotation_is_not_storable() -> None:
    with pytest.raises(NotStorableError, match="'server'"):
        encode(typed, (object(), Point(1, 2), WHEN, uuid.uuid4(), decimal.Decimal(1), Color.RED), {})


def test_keyword_after_a_skipped_default_binds_to_the_right_parameter() -> None:
    payload = encode(with_defaults, (1,), {"c": 3, "d": WHEN})  # b skipped; d is Any
    assert decode(with_defaults, payload) == ([1], {"c": 3, "d": WHEN})


def test_arguments_that_no_longer_fit_the_signature_fail_to_decode_clearly() -> None:
    payload = encode(typed, (Server(hostname="a", cpus=1, seen=WHEN), Point(1, 2), WHEN, uuid.uuid4(),
                             decimal.Decimal(1), Color.RED), {})
    broken = payload.replace('"cpus":1', '"cpus":"many"')
    with pytest.raises(ArgumentsDecodeError, match="signature change"):
        decode(typed, broken)
