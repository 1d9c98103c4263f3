"""The JSON parser of every API endpoint: DRF's, plus the refusals that keep malformed JSON from reaching Python
recursion or PostgreSQL (each a 400 naming the problem, never a 500).

* A body nested deeper than MAX_BODY_DEPTH levels (the stdlib decoder raises RecursionError near 1,000, which DRF
  lets through as a 500; every later walk over the data would recurse too).
* A number that overflows to infinity (``1e400``): jsonb cannot store it.
* A string holding an unpaired UTF-16 surrogate (``"\\ud800"``, legal JSON, not encodable as UTF-8), keys included:
  psycopg cannot send it and jsonb refuses it.
"""

import codecs
import json
import math
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json as drf_json

MAX_BODY_DEPTH = 64


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def body_problem(data: Any) -> str | None:
    """The first structural problem of parsed JSON (depth, unpaired surrogates) as a message naming where it is,
    or None. Iterative."""
    pending: list[tuple[Any, str, int]] = [(data, "", 1)]
    while pending:
        item, where, depth = pending.pop()
        if depth > MAX_BODY_DEPTH:
            return f"JSON body is nested too deeply (more than {MAX_BODY_DEPTH} levels)"
        if isinstance(item, str):
            if _has_surrogate(item):
                return f"{where or 'body'}: must not contain unpaired UTF-16 surrogates (such as \\ud800)"
        elif isinstance(item, dict):
            for key, value in item.items():
                if _has_surrogate(key):
                    return f"{where or 'body'}: keys must not contain unpaired UTF-16 surrogates (such as \\ud800)"
                pending.append((value, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(item, list):
            pending.extend((value, f"{where}[{index}]", depth + 1) for index, value in enumerate(item))
    return None


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding") or "utf-8"
        try:
            decoded = codecs.getreader(encoding)(stream)
            data = json.load(
                decoded,
                parse_constant=drf_json.strict_constant if self.strict else None,
                parse_float=_finite_float,
            )
        except RecursionError as exc:
            raise ParseError(f"JSON body is nested too deeply (more than {MAX_BODY_DEPTH} levels)") from exc
        except ValueError as exc:  # includes UnicodeDecodeError
            raise ParseError(f"JSON parse error - {exc}") from exc
        problem = body_problem(data)
        if problem:
            raise ParseError(problem)
        return data
