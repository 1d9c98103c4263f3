"""The built-in store behind the connector interface: the memories of this service, erased by THE engine.

It adds nothing to the engine: counts are the same aggregate queries scoping always ran, an erasure is an engine
DeletionJob (the erasure workflow creates and runs the request's job exactly as before, so the built-in store is
as fast as the engine), verification counts what still matches. Only memories.engine's public names are used.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Count, Q

from memories import engine

from ..models import DeletionJob, Memory
from ..scope import scope_q, scope_queryset
from .base import EraseProgress, ScopeCount

NONE_KEY = ""  # the key under which memories without an agent_id / run_id are counted


def held_q(holds: Sequence[dict[str, Any]]) -> Q:
    """Memories kept by a hold: placed under a LegalHold, or matching an active hold's scope."""
    q = Q(legal_hold__isnull=False)
    for hold in holds:
        if hold:
            q |= scope_q(hold)
    return q


class BuiltinConnector:
    kind = "builtin"

    def test(self) -> tuple[bool, str]:
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
        return True, "the built-in store answers"

    def count(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> ScopeCount:
        qs = scope_queryset(scope)
        totals = qs.aggregate(total=Count("id"), held=Count("id", filter=held_q(holds)))
        by_agent = {
            (row["agent_id"] if row["agent_id"] is not None else NONE_KEY): row["n"]
            for row in qs.order_by().values("agent_id").annotate(n=Count("id"))
        }
        by_run = {
            (row["run_id"] if row["run_id"] is not None else NONE_KEY): row["n"]
            for row in qs.order_by().values("run_id").annotate(n=Count("id"))
        }
        by_user = {
            (row["user_id"] if row["user_id"] is not None else NONE_KEY): row["n"]
            for row in qs.order_by().values("user_id").annotate(n=Count("id"))
        }
        return ScopeCount(
            total=totals["total"], held=totals["held"], by_agent=by_agent, by_run=by_run, by_user=by_user
        )

    def erase(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]], progress: EraseProgress) -> bool:
        """Runs (or resumes) one engine job for the scope within the time budget. The erasure workflow does not
        call this for requests (it runs the request's DeletionJob through the engine's own tasks); it serves
        callers that hold only a connector. Holds are applied by the engine itself (it reads the active ones),
        so `holds` is not passed on."""
        job_id = progress.state.get("deletion_job")
        if job_id is None:
            job = engine.deletion_job_create(
                kind=DeletionJob.Kind.ERASURE, scope=scope, requested_by="store:builtin", enqueue=False
            )
            job_id = str(job.id)
            progress.checkpoint(state={"deletion_job": job_id})
        result = engine.deletion_job_run(job_id=job_id, budget_seconds=max(progress.time_left(), 1.0))
        return bool(result.finished)

    def verify(self, scope: dict[str, Any], holds: Sequence[dict[str, Any]]) -> dict[str, int]:
        remaining = Memory.objects.filter(scope_q(scope)).exclude(held_q(holds)).count()
        return {"memories": remaining}
