"""JSON encoding of task arguments (never pickle).

Plain JSON values (str, int, float, bool, None, and lists and dicts of them) are stored as they
are. Anything else is encoded through the parameter's type annotation with pydantic (models,
dataclasses, enums, datetimes, UUIDs, Decimals, ...) and rebuilt through it when the task runs.
An unannotated parameter may hold a datetime, date, time, UUID or Decimal (tagged); anything
else there cannot be rebuilt, so the task is not storable. A datetime passed as an argument
keeps its `ZoneInfo` zone (inside a model, pydantic keeps the UTC offset only). Not storable
either, and said why: a type pydantic has no schema for (a DB session), and secrets
(`SecretStr`), which afterwork never writes to its store.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import inspect
import json
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretBytes, SecretStr, TypeAdapter
from pydantic_core import from_json, to_json  # JSON in Rust: 3-4x the stdlib's, each way

from ._errors import ArgumentsDecodeError, NotStorableError

_SCALARS = frozenset((str, int, float, bool, type(None)))
_TAG = "__afterwork__"
_TAGGED: dict[str, tuple[type, Callable[[Any], str], Callable[[str], Any]]] = {
    "datetime": (dt.datetime, dt.datetime.isoformat, dt.datetime.fromisoformat),
    "date": (dt.date, dt.date.isoformat, dt.date.fromisoformat),
    "time": (dt.time, dt.time.isoformat, dt.time.fromisoformat),
    "uuid": (uuid.UUID, str, uuid.UUID),
    "decimal": (decimal.Decimal, str, decimal.Decimal),
}


def _is_plain(value: Any) -> bool:
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is list:
        return _all_plain(value)
    if kind is dict:
        return all(type(k) is str for k in value) and _all_plain(value.values())
    return False


def _all_plain(values: Any) -> bool:
    """Every value plain JSON (a loop, not all() over a generator: this runs for every task
    added, and most arguments are strings and numbers)."""
    for value in values:  # noqa: SIM110 (all() over a generator costs twice as much here)
        if type(value) not in _SCALARS and not _is_plain(value):
            return False
    return True


class _Signature:
    def __init__(self, func: Callable[..., Any]) -> None:
        target = getattr(func, "func", func)
        self.signature = inspect.signature(target)
        try:
            hints = typing.get_type_hints(target)
        except Exception:  # unresolvable forward references: fall back to no annotations
            hints = {}
        self.adapters: dict[str, TypeAdapter[Any]] = {}
        self.problems: dict[str, str] = {}  # parameter -> why its annotation cannot store it
        for name, hint in hints.items():
            if name == "return" or _rebuilds_nothing(hint):  # those values are tagged
                continue
            try:
                adapter: TypeAdapter[Any] = TypeAdapter(hint)
            except Exception:  # a class pydantic has no schema for (a DB session, a client)
                self.problems[name] = (
                    f"its type {_type_name(hint)} has no JSON form; pass what the task needs "
                    "to rebuild it (an id, a URL) instead"
                )
                continue
            if _holds_secrets(adapter):
                self.problems[name] = _SECRET_ADVICE
            else:
                self.adapters[name] = adapter


_SECRET_ADVICE = (
    "it holds a secret (pydantic's SecretStr/SecretBytes), which would be stored masked; "
    "afterwork does not write secrets to its store: pass a reference (the setting's name) "
    "and read the secret inside the task"
)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__qualname__", None) or repr(hint)


def _holds_secrets(adapter: TypeAdapter[Any]) -> bool:
    """Pydantic marks secret fields `writeOnly` in their JSON schema: a secret anywhere inside
    the type (a model's field, a list of them) would be stored as '**********'."""
    try:
        schema = adapter.json_schema(mode="serialization")
    except Exception:  # no JSON schema: nothing tells of secrets, and dumping will say more
        return False
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("writeOnly") is True:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _rebuilds_nothing(hint: Any) -> bool:
    """Any, object, or Optional of them (Python 3.10 adds Optional for a None default)."""
    if hint in (Any, object):
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return all(arg in (Any, object, type(None)) for arg in typing.get_args(hint))
    return False


@functools.lru_cache(maxsize=1024)
def _signature(func: Callable[..., Any]) -> _Signature:
    return _Signature(func)


def encode(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The JSON text for `func(*args, **kwargs)`; NotStorableError says which argument fails
    (and is the only error: whatever the arguments, adding a task must not fail a request)."""
    try:
        return _encode(func, args, kwargs)
    except NotStorableError:
        raise
    except RecursionError:
        raise NotStorableError("an argument contains itself, or nests deeper than Python's "
                               "recursion limit") from None
    except Exception as exc:
        raise NotStorableError(f"its arguments do not encode as JSON ({exc})") from exc


def _encode(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    if _all_plain(args) and _all_plain(kwargs.values()):
        return to_json({"a": args, "k": kwargs}).decode()
    sig = _signature(func)
    try:
        bound = sig.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise NotStorableError(f"its arguments do not match its signature ({exc})") from exc
    encoded: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = sig.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            encoded[name] = [_encode_value(sig, name, v) for v in value]
        elif kind is inspect.Parameter.VAR_KEYWORD:
            encoded[name] = {k: _encode_value(sig, name, v) for k, v in value.items()}
        else:
            encoded[name] = _encode_value(sig, name, value)
    positional, keyword = _split(sig.signature, encoded)
    return to_json({"a": positional, "k": keyword, "t": 1}).decode()


def _encode_value(sig: _Signature, name: str, value: Any) -> Any:
    if _is_plain(value):
        return value
    if isinstance(value, SecretStr | SecretBytes):
        raise NotStorableError(f"argument {name!r}: {_SECRET_ADVICE}")
    if type(value) is dt.datetime and isinstance(value.tzinfo, ZoneInfo):
        return {_TAG: "datetime", "v": value.isoformat(), "z": value.tzinfo.key}  # keep the zone
    problem = sig.problems.get(name)
    if problem is not None:
        raise NotStorableError(f"argument {name!r}: {problem}")
    adapter = sig.adapters.get(name)
    if adapter is not None:
        try:
            return adapter.dump_python(value, mode="json")
        except Exception as exc:
            raise NotStorableError(f"argument {name!r} does not encode as JSON ({exc})") from exc
    for tag, (kind, dump, _) in _TAGGED.items():
        if type(value) is kind:
            return {_TAG: tag, "v": dump(value)}
    raise NotStorableError(
        f"argument {name!r} is a {type(value).__name__} and its parameter has no type "
        "annotation to rebuild it from: annotate the parameter with a type pydantic can "
        "rebuild from JSON (a model, a dataclass, a TypedDict), or pass plain JSON values"
    )


def _split(signature: inspect.Signature, encoded: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Positional values while no parameter was skipped, keywords after (as Python binds)."""
    positional: list[Any] = []
    keyword: dict[str, Any] = {}
    gap = False
    for name, param in signature.parameters.items():
        if name not in encoded:
            gap = gap or param.kind is not inspect.Parameter.VAR_POSITIONAL
            continue
        value = encoded[name]
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            positional.extend(value)
        elif param.kind is inspect.Parameter.VAR_KEYWORD:
            keyword.update(value)
        elif param.kind is inspect.Parameter.KEYWORD_ONLY or gap:
            keyword[name] = value
        else:
            positional.append(value)
    return positional, keyword


NO_ARGUMENTS = '{"a":[],"k":{}}'  # what `encode` stores for a call without arguments


def decode(func: Callable[..., Any], payload: str) -> tuple[list[Any], dict[str, Any]]:
    """The arguments stored by `encode`, rebuilt for `func`."""
    if payload == NO_ARGUMENTS:  # the most common payload, read without a parse
        return [], {}
    try:
        data = _parse(payload)
        args, kwargs = data["a"], data["k"]
        if not data.get("t"):
            return args, kwargs
        sig = _signature(func)
        positional_names, rest_args, rest_kwargs = _parameter_names(sig.signature)
        rebuilt_args = [
            _decode_value(sig, positional_names[i] if i < len(positional_names) else rest_args, v)
            for i, v in enumerate(args)
        ]
        rebuilt_kwargs = {
            k: _decode_value(sig, k if k in sig.signature.parameters else rest_kwargs, v)
            for k, v in kwargs.items()
        }
    except Exception as exc:
        raise ArgumentsDecodeError(
            f"the stored arguments of {getattr(func, '__qualname__', func)!r} no longer decode "
            f"({exc}); did its signature change since the task was stored?"
        ) from exc
    return rebuilt_args, rebuilt_kwargs


def _parse(payload: str) -> Any:
    """JSON text -> data: pydantic-core's parser (what wrote it), else the stdlib's (a payload
    an older afterwork wrote with `json.dumps`, whose escapes pydantic-core may refuse)."""
    try:
        return from_json(payload)
    except ValueError:
        return json.loads(payload)


def _parameter_names(signature: inspect.Signature) -> tuple[list[str], str, str]:
    """Names of the positional parameters, of *args and of **kwargs ("" when absent)."""
    positional, rest_args, rest_kwargs = [], "", ""
    for p in signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            rest_args = p.name
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            rest_kwargs = p.name
        elif not rest_args and p.kind is not inspect.Parameter.KEYWORD_ONLY:
            positional.append(p.name)
    return positional, rest_args, rest_kwargs


def _decode_value(sig: _Signature, name: str, value: Any) -> Any:
    if isinstance(value, dict) and _TAG in value and set(value) <= {_TAG, "v", "z"}:
        _, _, load = _TAGGED[value[_TAG]]
        loaded = load(value["v"])
        if "z" in value:
            loaded = loaded.astimezone(ZoneInfo(value["z"]))
        value = loaded
    adapter = sig.adapters.get(name)
    if adapter is not None:
        return adapter.validate_python(value)
    return value


# -- what a task returned ---------------------------------------------------------------------
_RETURN = "return"


@functools.lru_cache(maxsize=1024)
def _return_adapter(func: Callable[..., Any]) -> TypeAdapter[Any] | str | None:
    """The adapter of the function's return annotation; a str says why it cannot store a
    value; None: no annotation that rebuilds anything (the value is stored as it is, tagged)."""
    target = getattr(func, "func", func)
    try:
        hint = typing.get_type_hints(target).get(_RETURN)
    except Exception:  # unresolvable forward references: as if unannotated
        return None
    if hint is None or _rebuilds_nothing(hint) or hint is type(None):
        return None
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(hint)
    except Exception:
        return f"its return type {_type_name(hint)} has no JSON form"
    return _SECRET_ADVICE if _holds_secrets(adapter) else adapter


def encode_result(func: Callable[..., Any], value: Any) -> Any:
    """`value`, returned by `func`, as JSON data (through the return annotation, as the
    arguments go through theirs); NotStorableError says why it cannot be stored."""
    if _is_plain(value):
        return value
    if isinstance(value, SecretStr | SecretBytes):
        raise NotStorableError(f"the value returned: {_SECRET_ADVICE}")
    adapter = _return_adapter(func)
    if isinstance(adapter, str):
        raise NotStorableError(f"the value returned: {adapter}")
    try:
        if adapter is not None:
            return adapter.dump_python(value, mode="json")
        for tag, (kind, dump, _) in _TAGGED.items():
            if type(value) is kind:
                return {_TAG: tag, "v": dump(value)}
        return TypeAdapter(type(value)).dump_python(value, mode="json")
    except RecursionError:
        raise NotStorableError("the value returned contains itself, or nests too deep") from None
    except Exception as exc:
        raise NotStorableError(
            f"the value returned, a {type(value).__name__}, has no JSON form ({exc}); annotate "
            "the function's return type with one pydantic can rebuild, or return plain JSON "
            "values") from exc


def decode_result(func: Callable[..., Any] | None, data: Any) -> Any:
    """A result stored by `encode_result`, rebuilt through `func`'s return annotation (as
    stored, JSON, without the function)."""
    if isinstance(data, dict) and _TAG in data and set(data) <= {_TAG, "v"}:
        return _TAGGED[data[_TAG]][2](data["v"])
    adapter = _return_adapter(func) if func is not None else None
    if isinstance(adapter, TypeAdapter):
        return adapter.validate_python(data)
    return data
