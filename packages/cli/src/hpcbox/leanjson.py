"""JSON reading for the hot path of `hpcbox run`, without importing :mod:`json`.

``import json`` costs ~2 ms (its pure-Python decoder imports ``re``, which imports ``enum`` and
``functools``), a tenth of the start budget of `hpcbox run`. The C scanner that :func:`json.loads`
uses anyway (``_json.make_scanner``) is taken directly here, with the same settings as json's
default decoder, so :func:`loads` returns what ``json.loads`` returns and raises ``ValueError`` where
it raises ``json.JSONDecodeError`` (a ``ValueError``; a text that is damaged inside a value is
handed to json for that). Interpreters without ``_json`` use json.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds of every `hpcbox run`: checkers only
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Tuple

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
