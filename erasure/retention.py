"""Memory retention policies: memories matching a policy's scope and older than its max_age_days are erased by THE
deletion engine (memories.engine), on schedule (the beat, every RETENTION_INTERVAL_SECONDS) or on demand. Each run
is a RetentionRun holding the policy, the cutoff, the engine job, its counts and deleted-ids digest, with an audit
entry when it starts and when it ends. Memories under legal hold are kept (the engine skips and counts them).
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min, Q
from django.dispatch import receiver
from django.utils import timezone

from memories import engine
from memories.models import ENTITY_FIELDS, DeletionJob
from memories.pseudonyms import pseudonymise_scope
from memories.scope import ScopeError, scope_queryset, validate_scope
from memories.signals import deletion_job_finished

from .audit import audit_append
from .models import RetentionPolicy, RetentionRun
from .services.errors import ErasureInputError

logger = logging.getLogger(__name__)

POLICY_SCOPE_KEYS = (*ENTITY_FIELDS, "metadata")
MAX_AGE_DAYS_LIMIT = 36_500


class RetentionRunOpen(Exception):
    """The policy has a run still going: a second one would race it (HTTP 409). Carries the open run."""

    def __init__(self, run: RetentionRun):
        self.run = run
        super().__init__(f"retention run {run.id} of this policy is still running")


def _clean_policy_scope(scope: Any) -> dict[str, Any]:
    if scope is None:
        scope = {}
    if not isinstance(scope, dict):
        raise ErasureInputError("scope", "must be an object of entity filters")
    unknown = sorted(set(scope) - set(POLICY_SCOPE_KEYS))
    if unknown:
        raise ErasureInputError("scope", f"unknown key {unknown[0]}; allowed: {', '.join(POLICY_SCOPE_KEYS)}")
    if not scope:
        return {}
    try:
        return validate_scope(scope)
    except ScopeError as exc:
        raise ErasureInputError("scope", str(exc)) from None


def policy_cutoff(policy: RetentionPolicy, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(days=policy.max_age_days)


def policy_engine_scope(policy: RetentionPolicy, cutoff: datetime) -> dict[str, Any]:
    """The engine's scope of a run: the policy's entity filters, and created before the cutoff."""
    return {**(policy.scope or {}), "created_before": cutoff.isoformat()}


@transaction.atomic
def retention_policy_create(
    *, name: str, scope: Any, max_age_days: Any, enabled: bool = True, actor: str
) -> RetentionPolicy:
    """Registers a policy. Raises ErasureInputError naming the field. Side effects: one RetentionPolicy row, one
    `retention_policy.created` audit entry (the scope as keyed hashes)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ErasureInputError("name", "give a name of 1 to 100 characters")
    if RetentionPolicy.objects.filter(name=name).exists():
        raise ErasureInputError("name", "a policy with this name exists")
    if isinstance(max_age_days, bool) or not isinstance(max_age_days, int):
        raise ErasureInputError("max_age_days", "must be a whole number of days")
    if not 1 <= max_age_days <= MAX_AGE_DAYS_LIMIT:
        raise ErasureInputError("max_age_days", f"must be between 1 and {MAX_AGE_DAYS_LIMIT}")
    clean = _clean_policy_scope(scope)
    policy = RetentionPolicy.objects.create(
        name=name, scope=clean, max_age_days=max_age_days, enabled=bool(enabled), created_by=actor[:150]
    )
    audit_append(
        actor=actor,
        action="retention_policy.created",
        data={
            "policy": str(policy.id),
            "scope": pseudonymise_scope(clean),
            "max_age_days": max_age_days,
            "enabled": policy.enabled,
        },
    )
    return policy


def retention_policy_preview(*, policy: RetentionPolicy, now: datetime | None = None) -> dict[str, Any]:
    """The dry run: what a run now would erase (and keep under hold), by the engine's own scope. No writes."""
    cutoff = policy_cutoff(policy, now)
    totals = scope_queryset(policy_engine_scope(policy, cutoff)).aggregate(
        matching=Count("id"),
        held=Count("id", filter=Q(legal_hold__isnull=False)),
        oldest=Min("created_at"),
        newest=Max("created_at"),
    )
    return {
        "policy": str(policy.id),
        "cutoff": cutoff.isoformat(),
        "matching": totals["matching"],
        "would_delete": totals["matching"] - totals["held"],
        "held": totals["held"],
        "oldest_created_at": totals["oldest"].isoformat() if totals["oldest"] else None,
        "newest_created_at": totals["newest"].isoformat() if totals["newest"] else None,
    }


@transaction.atomic
def retention_policy_run(
    *, policy: RetentionPolicy, trigger: str, actor: str, now: datetime | None = None
) -> RetentionRun:
    """Starts a run of the policy: a RetentionRun and an engine job (kind retention) over the policy's scope and
    created before now − max_age_days, enqueued on commit. Raises RetentionRunOpen while a run of it is going.
    Side effects: those rows, one `retention.run_started` audit entry."""
    policy = RetentionPolicy.objects.select_for_update().get(pk=policy.pk)
    open_run = policy.runs.filter(status=RetentionRun.Status.RUNNING).first()
    if open_run is not None:
        raise RetentionRunOpen(open_run)
    started = now or timezone.now()
    cutoff = policy_cutoff(policy, started)
    run = RetentionRun.objects.create(
        policy=policy, trigger=trigger, requested_by=actor[:150], cutoff=cutoff, started_at=started
    )
    job = engine.deletion_job_create(
        kind=DeletionJob.Kind.RETENTION,
        scope=policy_engine_scope(policy, cutoff),
        requested_by=f"retention:{run.id}",
    )
    run.deletion_job = job
    run.save(update_fields=["deletion_job"])
    audit_append(
        actor=actor,
        action="retention.run_started",
        data={
            "policy": str(policy.id),
            "run": str(run.id),
            "trigger": trigger,
            "cutoff": cutoff.isoformat(),
            "deletion_job": str(job.id),
        },
    )
    return run


def retention_policies_run_due(*, now: datetime | None = None) -> int:
    """The beat's pass: starts a run of every enabled policy that has none going. Returns how many started."""
    started = 0
    for policy in RetentionPolicy.objects.filter(enabled=True).order_by("name"):
        try:
            retention_policy_run(policy=policy, trigger=RetentionRun.Trigger.SCHEDULE, actor="beat", now=now)
            started += 1
        except RetentionRunOpen:
            continue
    return started


def retention_run_job_finished(*, job: DeletionJob) -> RetentionRun | None:
    """Inside the job's final transaction: the run takes the job's outcome, counts and digest. Side effects: the
    run row, one `retention.run_finished` audit entry."""
    run = RetentionRun.objects.select_for_update().filter(deletion_job_id=job.id).first()
    if run is None or run.status != RetentionRun.Status.RUNNING:
        return run
    succeeded = job.status == DeletionJob.Status.SUCCEEDED
    run.status = RetentionRun.Status.SUCCEEDED if succeeded else RetentionRun.Status.FAILED
    run.finished_at = timezone.now()
    run.deleted_count = job.deleted_count
    run.held_count = job.held_count
    run.history_purged_count = job.history_purged_count
    run.digest = job.digest if succeeded else ""
    run.error = (job.error or "")[:200]
    run.save()
    audit_append(
        actor="worker",
        action="retention.run_finished",
        data={
            "policy": str(run.policy_id),
            "run": str(run.id),
            "status": run.status,
            "deleted": run.deleted_count,
            "held": run.held_count,
            "history_purged": run.history_purged_count,
            "deleted_ids_digest": run.digest,
        },
    )
    logger.info("retention run finished", extra={"run": str(run.id), "deleted": run.deleted_count})
    return run


@receiver(deletion_job_finished, dispatch_uid="erasure.retention.deletion_job_finished")
def on_deletion_job_finished(sender: Any, job: DeletionJob, **kwargs: Any) -> None:
    if job.kind == DeletionJob.Kind.RETENTION and job.parent_id is None:
        retention_run_job_finished(job=job)
