"""JSON reading for the hot path of `hpcbox run`, without importing :mod:`json`.

``import json`` costs ~2 ms (its pure-Python decoder imports ``re``, which imports ``enum`` and
``functools``), a tenth of the start budget of `hpcbox run`. The C scanner that :func:`json.loads`
uses anyway (``_json.make_scanner``) is taken directly here, with the same settings as json's
default decoder, so :func:`loads` returns what ``json.loads`` returns and raises ``ValueError`` where
it raises ``json.JSONDecodeError`` (a ``ValueError``; a text that is damaged inside a value is
handed to json for that). Interpreters without ``_json`` use json.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # typing costs milliseconds of every `hpcbox run`: checkers only
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

_WHITESPACE = " \t\n\r"


def _constant(name: str) -> float:
    return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


class _Settings:
    """What ``_json.make_scanner`` reads from a JSONDecoder: json's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: Dict[str, str] = {}


try:
    import _json

    _scan: Optional[Callable[[str, int], Tuple[Any, int]]] = _json.make_scanner(
        _Settings())  # type: ignore[arg-type]  # duck-typed: the attributes of json's default decoder
except (ImportError, AttributeError, TypeError):  # pragma: no cover - other interpreters
    _scan = None


def loads(text: str) -> Any:  # a JSON value
    """``json.loads(text)`` for a str."""
    if _scan is None:  # pragma: no cover - other interpreters
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError(f"not JSON at character {start}") from None
    except SystemError:
        # an error inside a value (a truncated file): before 3.12 the scanner raises it through
        # json.decoder, and fails this way when nothing has imported that; json says what is wrong
        import json

        return json.loads(text)
    finally:
        _Settings.memo.clear()
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"extra data after the JSON value at character {end}")
    return value


def same(a: Any, b: Any) -> bool:
    """Whether *a* and *b* are the same JSON document: equal values of the same types, and objects
    with their keys in the same order (so that json.dumps writes the same text for both)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(ka == kb and same(va, vb)
                                        for (ka, va), (kb, vb) in zip(a.items(), b.items()))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


_quote: Optional[Callable[[str], str]]
try:
    from _json import encode_basestring_ascii as _quote
except ImportError:  # pragma: no cover - other interpreters
    _quote = None


class _Unusual(Exception):
    """A value :func:`dumps` leaves to json (another type, a subclass, a key json would refuse)."""


_CONSTANTS = {None: "null", True: "true", False: "false"}


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    kind = type(key)
    if kind is str:
        return key  # type: ignore[no-any-return]
    if kind is float:
        return _float(key)
    if kind is bool or key is None:
        return _CONSTANTS[key]
    if kind is int:
        return int.__repr__(key)
    raise _Unusual


class _Writer:
    """One :func:`dumps`: its layout (json's *indent* as a string, the separators) and its output."""

    def __init__(self, indent: Optional[str], item_sep: str, key_sep: str) -> None:
        self.indent, self.item_sep, self.key_sep = indent, item_sep, key_sep
        self.out: List[str] = []

    def value(self, value: Any, level: int) -> None:
        kind = type(value)
        if kind is str:
            self.out.append(_quote(value))  # type: ignore[misc]  # (None only without _json: not here)
        elif kind is bool or value is None:
            self.out.append(_CONSTANTS[value])
        elif kind is int:
            self.out.append(int.__repr__(value))
        elif kind is float:
            self.out.append(_float(value))
        elif kind is dict:
            self.items([(_quote(_key(k)) + self.key_sep, v) for k, v in value.items()], level, "{}")  # type: ignore[misc]
        elif kind is list or kind is tuple:
            self.items([("", v) for v in value], level, "[]")
        else:
            raise _Unusual

    def items(self, items: List[Tuple[str, Any]], level: int, brackets: str) -> None:
        """An object's or array's members (each with its key and separator, or ""), as json lays them out."""
        if not items:
            self.out.append(brackets)
            return
        indent = self.indent
        inner = self.item_sep if indent is None else f"{self.item_sep}\n{indent * (level + 1)}"
        self.out.append(brackets[0] if indent is None else f"{brackets[0]}\n{indent * (level + 1)}")
        for i, (prefix, item) in enumerate(items):
            self.out.append(f"{inner}{prefix}" if i else prefix)
            self.value(item, level + 1)
        self.out.append(brackets[1] if indent is None else f"\n{indent * level}{brackets[1]}")


def dumps(value: Any, indent: Optional[int] = None, separators: Optional[Tuple[str, str]] = None) -> str:
    """``json.dumps(value, indent=indent, separators=separators)``, the same text, without importing
    json (whose encoder and decoder import ``re``) for the JSON types themselves (dict, list, tuple,
    str, int, float, bool, None); anything else is handed to json, which writes or refuses it."""
    if _quote is not None and (indent is None or type(indent) is int):
        item_sep, key_sep = separators or ((",", ": ") if indent is not None else (", ", ": "))
        writer = _Writer(None if indent is None else " " * indent, item_sep, key_sep)
        try:
            writer.value(value, 0)
            return "".join(writer.out)
        except (_Unusual, RecursionError):
            pass
    import json

    return json.dumps(value, indent=indent, separators=separators)
