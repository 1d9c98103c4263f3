"""Keyset selection: a job's scope after its cursor, as queries that walk the (entity, id) indexes in id order."""

import uuid
from typing import Any

from django.db.models import QuerySet

from ..models import ENTITY_FIELDS, Memory, MemoryHistory, MemoryTombstone
from ..scope import scope_q

MEMORY_TABLE = Memory._meta.db_table
HISTORY_TABLE = MemoryHistory._meta.db_table
TOMBSTONE_TABLE = MemoryTombstone._meta.db_table

NIL = uuid.UUID(int=0)  # "no cursor": below every memory id
CURSOR = uuid.UUID("c0c0c0c0-0000-4000-8000-00000000c0de")  # stands for the cursor while the SQL is built


def scope_parts(scope: dict[str, Any], cursor: Any) -> tuple[list[QuerySet[Memory]], tuple[str, ...]]:
    """The scope after the cursor, split by the values of its first entity column, and the keyset order.

    Each value is matched as `(column, id) > (value, cursor) AND column <= value`, and the order is (column, id):
    exactly the (entity, id) index, whose scan starts right after the cursor (the row comparison is its start key)
    and ends after the value. Two other spellings are slower: with `column = value AND id > cursor` PostgreSQL
    knows the column is constant and, with time-ordered ids (whose primary key follows the heap), often prefers
    walking the primary key from the cursor and filtering, which reads other subjects' rows by the thousand; with
    `column = ANY(ARRAY[value])` next to the row comparison, the index scan starts at the value's first entry and
    steps over every entry before the cursor (a job's batches would cost more and more). The order is still the
    id order (one value per part)."""
    for column in ENTITY_FIELDS:
        if column not in scope:
            continue
        value = scope[column]
        rest = {k: v for k, v in scope.items() if k != column}
        base = Memory.objects.filter(scope_q(rest)) if rest else Memory.objects.all()
        parts = [
            base.extra(
                where=[
                    f"({MEMORY_TABLE}.{column}, {MEMORY_TABLE}.id) > (%s, %s::uuid)",
                    f"{MEMORY_TABLE}.{column} <= %s",
                ],
                params=[one, cursor, one],
            )
            for one in ([value] if isinstance(value, str) else value)
        ]
        return parts, (column, "id")
    return [Memory.objects.filter(scope_q(scope), id__gt=cursor)], ("id",)
