"""The upstream driver's verdict: which failures are expected, and when the list is stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.upstream.run import EXPECTED_FILE, MAY_PASS, compare, merge, read_expected


def outcome(kind: str) -> dict[str, str]:
    return {"outcome": kind, "message": ""}


def test_failing_test_not_listed_is_unexpected() -> None:
    verdict = compare({"starlette/t.py::a": outcome("failed"), "starlette/t.py::b": outcome("passed")}, {})
    assert verdict["unexpected_failures"] == ["starlette/t.py::a"]


def test_error_and_strict_xpass_count_as_failures() -> None:
    results = {"fastapi/t.py::a": outcome("error"), "fastapi/t.py::b": outcome("xpassed")}
    assert compare(results, {})["unexpected_failures"] == ["fastapi/t.py::a", "fastapi/t.py::b"]


def test_listed_failure_is_an_expected_difference() -> None:
    verdict = compare({"fastapi/t.py::a": outcome("failed")}, {"fastapi/t.py::a": "stored"})
    assert verdict["expected_differences"] == ["fastapi/t.py::a"]
    assert verdict["unexpected_failures"] == verdict["now_passing"] == verdict["not_run"] == []


def test_listed_test_that_passes_must_leave_the_list() -> None:
    verdict = compare({"fastapi/t.py::a": outcome("passed")}, {"fastapi/t.py::a": "stored"})
    assert verdict["now_passing"] == ["fastapi/t.py::a"]


def test_listed_id_that_ran_no_test_is_reported() -> None:
    verdict = compare({"fastapi/t.py::a": outcome("passed")}, {"fastapi/t.py::gone": "renamed upstream"})
    assert verdict["not_run"] == ["fastapi/t.py::gone"]


def test_star_matches_any_text_while_brackets_stay_literal() -> None:
    results = {"s/t.py::a[trio]": outcome("failed"), "s/t.py::a[asyncio]": outcome("failed"),
               "s/t.py::at": outcome("failed")}
    verdict = compare(results, {"s/t.py::*[trio]": "refused on trio"})
    assert verdict["expected_differences"] == ["s/t.py::a[trio]"]
    assert verdict["unexpected_failures"] == ["s/t.py::a[asyncio]", "s/t.py::at"]


def test_pattern_stays_while_one_test_it_matches_fails_and_goes_when_none_does() -> None:
    results = {"s/t.py::a[trio]": outcome("failed"), "s/t.py::b[trio]": outcome("passed")}
    assert compare(results, {"s/*[trio*": "refused on trio"})["now_passing"] == []
    results["s/t.py::a[trio]"] = outcome("passed")
    assert compare(results, {"s/*[trio*": "refused on trio"})["now_passing"] == ["s/*[trio*"]


def test_a_timing_line_is_read_and_never_reported_as_passing(tmp_path: Path) -> None:
    listed = tmp_path / "expected.txt"
    listed.write_text("s/t.py::a[asyncio] |? two requests interleave differently\n")
    expected = read_expected(listed)
    assert expected == {"s/t.py::a[asyncio]": MAY_PASS + "two requests interleave differently"}
    assert compare({"s/t.py::a[asyncio]": outcome("passed")}, expected)["now_passing"] == []
    assert compare({"s/t.py::a[asyncio]": outcome("failed")}, expected)["unexpected_failures"] == []


def test_line_without_reason_is_refused_with_its_line_number(tmp_path: Path) -> None:
    listed = tmp_path / "expected.txt"
    listed.write_text("# comment\n\nfastapi/t.py::a | why\nfastapi/t.py::b\n")
    with pytest.raises(SystemExit, match=r"expected.txt:4: write `suite/test id \| reason`"):
        read_expected(listed)


def test_committed_list_reads_and_names_suites() -> None:
    for test in read_expected(EXPECTED_FILE):
        assert test.split("/", 1)[0] in ("starlette", "fastapi"), test


def test_a_failure_in_any_repeated_run_counts_and_the_test_is_named_flaky() -> None:
    first = {"f/t.py::a": outcome("passed"), "f/t.py::b": outcome("passed")}
    second = {"f/t.py::a": {"outcome": "failed", "message": "call: assert '' == 'x'"},
              "f/t.py::b": outcome("passed")}
    merged, flaky = merge([first, second, first])
    assert merged["f/t.py::a"] == {"outcome": "failed", "message": "call: assert '' == 'x'"}
    assert merged["f/t.py::b"]["outcome"] == "passed"
    assert flaky == ["f/t.py::a"]
