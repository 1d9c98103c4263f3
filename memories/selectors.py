"""Reads of the memory store for the Mem0-compatible API: lists, full-text search, history, entities, jobs."""

import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.search import SearchQueryField
from django.db.models import BooleanField, Count, F, FloatField, Func, Max, Min, Q, QuerySet, Sum, Value
from django.db.models.expressions import RawSQL
from django.utils import timezone

from .filters import filters_to_q
from .models import ENTITY_TYPES, SEARCH_CONFIG, DeletionJob, Memory, MemoryHistory, MemoryTombstone

# ts_rank_cd normalisation 32 maps a rank r to r / (r + 1), so every score lies in [0, 1).
RANK_NORMALISATION = 32


def _visible(*, show_expired: bool) -> Q:
    if show_expired:
        return Q()
    return Q(expiration_date__isnull=True) | Q(expiration_date__gte=timezone.localdate())


def memory_get(*, memory_id: uuid.UUID) -> Memory | None:
    return Memory.objects.filter(id=memory_id).first()


def memories_list(*, filters: dict[str, Any], show_expired: bool = False) -> QuerySet[Memory]:
    """Memories matching a v2 filter, newest first. Raises memories.filters.FilterError."""
    return (
        Memory.objects.filter(filters_to_q(filters))
        .filter(_visible(show_expired=show_expired))
        .defer("search_vector")
        .order_by("-created_at", "-id")
    )


def _or_tsquery(query: str) -> RawSQL:
    # plainto_tsquery stems and drops stop words; turning its ANDs into ORs lets a natural question ("what does
    # she like to eat?") match memories holding any of its words, ranked by how well they cover it. The result
    # is cast, not re-parsed with to_tsquery, so lexemes are not stemmed twice.
    return RawSQL(
        "replace(plainto_tsquery(%s::regconfig, %s)::text, ' & ', ' | ')::tsquery",
        (SEARCH_CONFIG, query),
        output_field=SearchQueryField(),
    )


class _Matches(Func):
    """`search_vector @@ tsquery` as a boolean expression: Django's `search_vector=` lookup would wrap the
    tsquery in plainto_tsquery again."""

    arg_joiner = " @@ "
    template = "(%(expressions)s)"
    output_field = BooleanField()


@dataclass
class ScoredMemory:
    memory: Memory
    score: float


def memories_search_queryset(
    *, query: str, filters: dict[str, Any], threshold: float, show_expired: bool = False
) -> QuerySet[Memory]:
    """Matches of a full-text query over the stored search_vector column (GIN index), each annotated with
    `score` in [0, 1), best first. Memories that share no word with the query never match.
    Raises memories.filters.FilterError."""
    tsquery = _or_tsquery(query)
    rank = Func(
        F("search_vector"),
        tsquery,
        Value(RANK_NORMALISATION),
        function="ts_rank_cd",
        output_field=FloatField(),
    )
    return (
        Memory.objects.filter(filters_to_q(filters))
        .filter(_visible(show_expired=show_expired))
        .filter(_Matches(F("search_vector"), tsquery))
        .annotate(score=rank)
        .filter(score__gte=threshold)
        .defer("search_vector")
        .order_by("-score", "-created_at", "id")
    )


def memories_search(
    *,
    query: str,
    filters: dict[str, Any],
    top_k: int,
    threshold: float,
    show_expired: bool = False,
) -> list[ScoredMemory]:
    """The top_k best matches (see memories_search_queryset)."""
    rows = memories_search_queryset(
        query=query, filters=filters, threshold=threshold, show_expired=show_expired
    )[:top_k]
    return [ScoredMemory(memory=m, score=round(float(m.score), 6)) for m in rows]  # type: ignore[attr-defined]


_EVENT_NAMESPACE = uuid.UUID("6f1c9a52-3b0e-4c55-9d3c-2a7f0e4b8d11")


def memory_history(*, memory_id: uuid.UUID) -> list[MemoryHistory] | None:
    """The memory's events, oldest first, as Mem0 lists them; None when no memory with this id exists or existed.

    Stored rows are the UPDATE events (and ADD/DELETE rows written by earlier versions). The ADD event of a live
    memory is derived: its creation time, and its text before the first UPDATE (or its current text). A deleted
    memory has exactly one event, its content-free DELETE event, found in the engine's tombstones (GIN index on
    their ids). Derived events get stable ids (uuid5 of the memory id and the event)."""
    memory = Memory.objects.filter(id=memory_id).only("id", "text", "categories", "created_at").first()
    rows = list(MemoryHistory.objects.filter(memory_id=memory_id).order_by("created_at", "id"))
    if memory is None:
        # through the GIN index, else among the few tombstones not indexed yet (memories_tombstones_merge)
        deleted = MemoryTombstone.objects.filter(ids__contains=[memory_id]).order_by("created_at")
        deleted_at = (
            deleted.filter(indexed=True).values_list("created_at", flat=True).first()
            or deleted.filter(indexed=False).values_list("created_at", flat=True).first()
        )
        if deleted_at is None:
            return [MemoryHistory(**_content_free(row)) for row in rows] or None
        return [
            MemoryHistory(
                id=uuid.uuid5(_EVENT_NAMESPACE, f"DELETE:{memory_id}"),
                memory_id=memory_id,
                event=MemoryHistory.Event.DELETE,
                categories=[],
                created_at=deleted_at,
            )
        ]
    if not any(row.event == MemoryHistory.Event.ADD for row in rows):
        updates = [row for row in rows if row.event == MemoryHistory.Event.UPDATE]
        added = MemoryHistory(
            id=uuid.uuid5(_EVENT_NAMESPACE, f"ADD:{memory_id}"),
            memory_id=memory_id,
            event=MemoryHistory.Event.ADD,
            new_memory=updates[0].old_memory if updates else memory.text,
            categories=updates[0].categories if updates else memory.categories,
            created_at=memory.created_at,
        )
        rows.insert(0, added)
    return rows


def _content_free(row: MemoryHistory) -> dict[str, Any]:
    """A stored event of a memory that no longer exists, without text (a legacy DELETE row, or a row that
    slipped in behind the engine: never answered with its text)."""
    return {
        "id": row.id,
        "memory_id": row.memory_id,
        "event": row.event,
        "categories": [],
        "created_at": row.created_at,
    }


def entities_list() -> list[dict[str, Any]]:
    """One GROUP BY per entity column (each served by its (entity, id) index), not one query per row."""
    results: list[dict[str, Any]] = []
    for entity_type, column in ENTITY_TYPES.items():
        rows = (
            Memory.objects.filter(**{f"{column}__isnull": False})
            .values(column)
            .annotate(total=Count("id"), first=Min("created_at"), last=Max("updated_at"))
            .order_by(column)
        )
        results.extend(
            {
                "id": row[column],
                "name": row[column],
                "type": entity_type,
                "total_memories": row["total"],
                "created_at": row["first"],
                "updated_at": row["last"],
            }
            for row in rows
        )
    return results


def entity_exists(*, entity_type: str, name: str) -> bool:
    return Memory.objects.filter(**{ENTITY_TYPES[entity_type]: name}).exists()


def deletion_job_get(*, job_id: uuid.UUID) -> DeletionJob | None:
    """The job with its progress: during its first pass (run by its lanes, if it has any), what its lanes deleted
    so far counts as the job's (their counts are added to the job's own when they have all finished)."""
    job = DeletionJob.objects.filter(id=job_id).first()
    if job is not None and job.passes == 0:
        totals = job.lanes.aggregate(
            deleted=Sum("deleted_count"), history=Sum("history_purged_count"), batches=Sum("batches")
        )
        job.deleted_count += totals["deleted"] or 0
        job.history_purged_count += totals["history"] or 0
        job.batches += totals["batches"] or 0
    return job
