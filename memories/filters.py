"""Mem0's v2 filter grammar (the `filters` of the v3 list and search bodies) translated into a Django Q.

Grammar (a filter is a JSON object; several keys in one object are ANDed):

* Logic: ``{"AND": [f, …]}``, ``{"OR": [f, …]}``, ``{"NOT": [f, …]}`` (NOT negates the AND of its items; a single
  object is accepted in place of a one-item list). They nest freely.
* Entity fields ``user_id``, ``agent_id``, ``app_id``, ``run_id``: a plain string means eq; ``"*"`` means the
  field is set (non-null); an operator object ``{"eq": s}``, ``{"ne": s}``, ``{"in": [s, …]}``. ``ne`` follows
  the usual reading "differs from s", so memories where the field is unset match ``ne`` too.
* Time fields ``created_at``, ``updated_at``, ``expiration_date``: ``{"gt"|"gte"|"lt"|"lte": value}`` (several
  operators in one object are ANDed). A value is an ISO date or datetime; a date on a timestamp field means
  the whole UTC day (``lte 2024-05-01`` includes all of May 1st, ``gt 2024-05-01`` starts on May 2nd); a naive
  datetime is UTC. On ``expiration_date`` a datetime is reduced to its date.
* ``metadata``: an object whose keys are matched by JSON containment (``metadata @> {…}``, the jsonb_path_ops
  GIN index), so ``{"metadata": {"topic": "food"}}`` matches memories whose metadata has topic = food, nested
  objects included. Per key, an object with exactly one key among ``eq``/``ne``/``contains``/``in`` is an
  operator: ``eq`` = containment, ``ne`` = not that value (an absent key counts as different), ``in`` = any of
  the values, ``contains`` = the key's value is a list holding the element, or a string containing the
  substring (case-sensitive). Any other object is a nested value matched by containment. The whole-object
  forms ``{"metadata": {"eq"|"ne"|"contains": {…}}}`` are accepted too (``contains`` = containment).
* ``categories``: ``{"in": [c, …]}`` = has any of them (array overlap), ``{"contains": c | [c, …]}`` = has all
  of them (array containment); a plain string or list means contains. Both use the GIN index on categories.
* ``memory_ids``: a list of memory UUIDs (or ``{"in": [...]}``).

Any other key, or an operator a field does not support, raises FilterError naming it; values of the wrong type
raise FilterError too, so the API answers 400 and never 500. An empty object inside AND/OR/NOT is refused (it
would match everything: ``{"NOT": {}}`` would otherwise read the whole store).

Size: before anything recurses, a filter is bounded as a whole (filters_check_bounds): at most MAX_JSON_DEPTH
levels of JSON and MAX_FILTER_NODES nodes (keys, list items and values across the whole tree); the built
condition then holds at most MAX_CONDITIONS SQL conditions. One request cannot make PostgreSQL evaluate thousands
of jsonb conditions per row (the web statement timeout, config/middleware.py, is the second line).

Entity rule (list and search): at least one entity condition must appear somewhere in the filter, at any depth
(inside AND, OR or NOT, with any operator including "*"). The rule stops accidental "everything" reads; it is not
an access boundary (every key of this single-tenant service sees the whole store).
"""

import datetime
import uuid
from typing import Any

from django.db.models import Q
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Contains
from django.utils import timezone

from .models import ENTITY_FIELDS

LOGIC_KEYS = ("AND", "OR", "NOT")
TIME_FIELDS = ("created_at", "updated_at", "expiration_date")
FILTER_KEYS = (*LOGIC_KEYS, *ENTITY_FIELDS, *TIME_FIELDS, "metadata", "categories", "memory_ids")
ENTITY_OPERATORS = ("eq", "ne", "in")
TIME_OPERATORS = ("gt", "gte", "lt", "lte")
METADATA_OPERATORS = ("eq", "ne", "contains", "in")
CATEGORY_OPERATORS = ("in", "contains")
MAX_DEPTH = 10
MAX_LIST = 1000
MAX_JSON_DEPTH = 32
MAX_FILTER_NODES = 2500
MAX_CONDITIONS = 200


class FilterError(ValueError):
    """A filter the grammar does not accept; the message names the key, operator or value at fault."""


def contains_nul(value: Any) -> bool:
    """True when a string anywhere in a JSON value (keys included, at any depth) holds a NUL character, which
    PostgreSQL text and jsonb refuse (an error at query time, so it is caught here as bad input)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return False


def text_problem(value: Any) -> str | None:
    """What makes a JSON value unstorable as PostgreSQL text/jsonb, or None: a NUL character or an unpaired UTF-16
    surrogate ("\\ud800", which JSON can spell but UTF-8 cannot encode) in any string, keys included. Iterative, so
    any depth is safe."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "must not contain NUL characters"
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    return "must not contain unpaired UTF-16 surrogates (such as \\ud800)"
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return None


def filters_check_bounds(filters: Any) -> None:
    """Raises FilterError when a filter is too deep or too large as a whole, or holds text PostgreSQL refuses.
    Iterative, and called before anything recurses over the filter."""
    nodes = 0
    pending: list[tuple[Any, int]] = [(filters, 1)]
    while pending:
        item, depth = pending.pop()
        nodes += 1
        if depth > MAX_JSON_DEPTH:
            raise FilterError(f"filters are nested too deeply (more than {MAX_JSON_DEPTH} levels of JSON)")
        if nodes > MAX_FILTER_NODES:
            raise FilterError(
                f"filters are too large (more than {MAX_FILTER_NODES} keys, list items and values in total)"
            )
        if isinstance(item, dict):
            nodes += len(item)  # the keys
            pending.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
    problem = text_problem(filters)
    if problem:
        raise FilterError(f"filters {problem}")


def _condition_count(q: Q) -> int:
    count = 0
    pending: list[Any] = [q]
    while pending:
        node = pending.pop()
        if isinstance(node, Q):
            pending.extend(node.children)
        else:
            count += 1
    return count


def filters_to_q(filters: Any) -> Q:
    """The Q for a v2 filter object (an empty object matches everything). Raises FilterError for a filter the
    grammar refuses or one past the size bounds (module docstring)."""
    filters_check_bounds(filters)
    q = _node(filters, depth=0, where="filters")
    if _condition_count(q) > MAX_CONDITIONS:
        raise FilterError(
            f"filters are too large (more than {MAX_CONDITIONS} conditions; "
            "a metadata key, an item of metadata.in or a time operator each count as one)"
        )
    return q


def filters_have_entity(filters: Any) -> bool:
    """True when an entity field appears anywhere in the filter (see the module docstring). Iterative."""
    pending = [filters]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key in ENTITY_FIELDS:
                    return True
                if key in LOGIC_KEYS:
                    pending.append(value)
    return False


def _node(node: Any, *, depth: int, where: str) -> Q:
    if depth > MAX_DEPTH:
        raise FilterError(f"Filters are nested too deeply (more than {MAX_DEPTH} levels)")
    if not isinstance(node, dict):
        raise FilterError(f"{where} must be a JSON object")
    q = Q()
    for key, value in node.items():
        if key in LOGIC_KEYS:
            q &= _logic(key, value, depth=depth)
        elif key in ENTITY_FIELDS:
            q &= _entity(key, value)
        elif key in TIME_FIELDS:
            q &= _time(key, value)
        elif key == "metadata":
            q &= _metadata(value)
        elif key == "categories":
            q &= _categories(value)
        elif key == "memory_ids":
            q &= _memory_ids(value)
        else:
            raise FilterError(f"Unknown filter key: {key}")
    return q


def _logic(key: str, value: Any, *, depth: int) -> Q:
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list) or not items:
        raise FilterError(f"{key} must be a non-empty list of filter objects")
    if any(item == {} for item in items):
        raise FilterError(
            f"each item of {key} must be a non-empty filter object (an empty one matches everything)"
        )
    parts = [_node(item, depth=depth + 1, where=f"each item of {key}") for item in items]
    combined = parts[0]
    for part in parts[1:]:
        combined = combined | part if key == "OR" else combined & part
    return ~combined if key == "NOT" else combined


def _entity_value(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise FilterError(f"{field} must be a non-empty string")
    return value


def _entity(field: str, value: Any) -> Q:
    if value == "*":
        return Q(**{f"{field}__isnull": False})
    if isinstance(value, str):
        return Q(**{field: _entity_value(field, value)})
    if not isinstance(value, dict) or not value:
        raise FilterError(f'{field} must be a string, "*" or an operator object such as {{"in": [...]}}')
    q = Q()
    for op, operand in value.items():
        if op not in ENTITY_OPERATORS:
            raise FilterError(f"Unsupported operator '{op}' for field '{field}'")
        if op == "in":
            if not isinstance(operand, list) or not operand or len(operand) > MAX_LIST:
                raise FilterError(f"{field}.in must be a non-empty list of at most {MAX_LIST} strings")
            q &= Q(**{f"{field}__in": [_entity_value(field, v) for v in operand]})
        elif operand == "*":
            wildcard = Q(**{f"{field}__isnull": False})
            q &= wildcard if op == "eq" else ~wildcard
        elif op == "eq":
            q &= Q(**{field: _entity_value(field, operand)})
        else:
            q &= ~Q(**{field: _entity_value(field, operand)})
    return q


def _parse_time(field: str, op: str, value: Any) -> datetime.date | datetime.datetime:
    if not isinstance(value, str):
        raise FilterError(f"{field}.{op} must be an ISO date (YYYY-MM-DD) or datetime string")
    try:
        if len(value) == 10:
            return datetime.date.fromisoformat(value)
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"{field}.{op} must be an ISO date (YYYY-MM-DD) or datetime string") from exc
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed


def _time(field: str, value: Any) -> Q:
    if not isinstance(value, dict) or not value:
        raise FilterError(f'{field} must be an operator object such as {{"gte": "2024-01-01"}}')
    q = Q()
    for op, operand in value.items():
        if op not in TIME_OPERATORS:
            raise FilterError(f"Unsupported operator '{op}' for field '{field}'")
        when = _parse_time(field, op, operand)
        if field == "expiration_date":
            day = when.date() if isinstance(when, datetime.datetime) else when
            q &= Q(**{f"{field}__{op}": day})
            continue
        if isinstance(when, datetime.datetime):
            q &= Q(**{f"{field}__{op}": when})
            continue
        # A date on a timestamp: compare with the bounds of that UTC day.
        start = datetime.datetime.combine(when, datetime.time.min, tzinfo=datetime.UTC)
        next_day = start + datetime.timedelta(days=1)
        bound = {"gt": ("gte", next_day), "gte": ("gte", start), "lt": ("lt", start), "lte": ("lt", next_day)}
        lookup, instant = bound[op]
        q &= Q(**{f"{field}__{lookup}": instant})
    return q


def _metadata_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise FilterError("metadata keys must be non-empty strings")
    return key


def _metadata_key_condition(key: str, value: Any) -> Q:
    is_operator = isinstance(value, dict) and len(value) == 1 and next(iter(value)) in METADATA_OPERATORS
    if not is_operator:
        return Q(metadata__contains={key: value})
    op, operand = next(iter(value.items()))
    if op == "eq":
        return Q(metadata__contains={key: operand})
    if op == "ne":
        return ~Q(metadata__contains={key: operand})
    if op == "in":
        if not isinstance(operand, list) or not operand or len(operand) > MAX_LIST:
            raise FilterError(f"metadata.{key}.in must be a non-empty list of at most {MAX_LIST} values")
        q = Q(metadata__contains={key: operand[0]})
        for item in operand[1:]:
            q |= Q(metadata__contains={key: item})
        return q
    # contains: a list value holding the element (GIN containment), or a string value holding the substring.
    if isinstance(operand, dict | list):
        raise FilterError(f"metadata.{key}.contains must be a string, number or boolean")
    q = Q(metadata__contains={key: [operand]})
    if isinstance(operand, str):
        q |= Q(Contains(KeyTextTransform(key, "metadata"), operand))
    return q


def _metadata(value: Any) -> Q:
    if not isinstance(value, dict) or not value:
        raise FilterError("metadata must be a non-empty JSON object")
    if len(value) == 1:
        op, operand = next(iter(value.items()))
        if op in ("eq", "ne", "contains") and isinstance(operand, dict):
            if not operand:
                raise FilterError(f"metadata.{op} must be a non-empty JSON object")
            return ~Q(metadata__contains=operand) if op == "ne" else Q(metadata__contains=operand)
    q = Q()
    for key, condition in value.items():
        q &= _metadata_key_condition(_metadata_key(key), condition)
    return q


def _category_list(op: str, operand: Any) -> list[str]:
    values = [operand] if isinstance(operand, str) else operand
    if (
        not isinstance(values, list)
        or not values
        or len(values) > MAX_LIST
        or not all(isinstance(v, str) and v for v in values)
    ):
        raise FilterError(f"categories.{op} must be a string or a non-empty list of strings")
    return values


def _categories(value: Any) -> Q:
    if isinstance(value, str | list):
        return Q(categories__contains=_category_list("contains", value))
    if not isinstance(value, dict) or not value:
        raise FilterError('categories must be a list or an operator object such as {"in": [...]}')
    q = Q()
    for op, operand in value.items():
        if op not in CATEGORY_OPERATORS:
            raise FilterError(f"Unsupported operator '{op}' for field 'categories'")
        lookup = "overlap" if op == "in" else "contains"
        q &= Q(**{f"categories__{lookup}": _category_list(op, operand)})
    return q


def _memory_ids(value: Any) -> Q:
    if isinstance(value, dict):
        if set(value) != {"in"}:
            bad = next(iter(set(value) - {"in"}), "")
            raise FilterError(f"Unsupported operator '{bad}' for field 'memory_ids'")
        value = value["in"]
    if not isinstance(value, list) or not value or len(value) > MAX_LIST:
        raise FilterError(f"memory_ids must be a non-empty list of at most {MAX_LIST} UUIDs")
    try:
        ids = [uuid.UUID(str(v)) for v in value if isinstance(v, str)]
    except ValueError as exc:
        raise FilterError("memory_ids must hold valid UUIDs") from exc
    if len(ids) != len(value):
        raise FilterError("memory_ids must hold valid UUIDs")
    return Q(id__in=ids)
