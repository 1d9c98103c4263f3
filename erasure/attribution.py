"""Who erased what the request did not: when memories in the request's scope were deleted by other deletion jobs
between scoping and verification (a plain `DELETE /v1/memories/?user_id=` running at the same time, another
erasure request for the same subject), the request's own job deletes fewer than were scoped — possibly none.
The memories are gone all the same; this module says by whom, so the certificate and the subject's mail state
what happened instead of "0 items".

The other jobs are found by the keyed hashes of the subject's user ids in their pseudonymised scope (a finished job
keeps no clear identifier), among the jobs still running or finished since the request was scoped. A job's count
is its whole scope's (a job over several users counts them all); what no such job explains (deletes by memory id,
which carry no user id) is reported as a remainder.
"""

from typing import Any

from django.db.models import Q

from memories.models import DeletionJob
from memories.pseudonyms import pseudonym

from .models import ErasureRequest


def erasure_attribution(*, request: ErasureRequest, user_ids: list[str]) -> dict[str, Any] | None:
    """None when the request's own jobs deleted everything that was scoped (less the held); otherwise the
    shortfall with the other jobs that deleted the subject's memories since scoping. Reads only; call it before
    the request is pseudonymised (it needs the clear user ids to hash them)."""
    expected = max((request.scoped_total or 0) - (request.scoped_held or 0), 0)
    deleted = request.deleted_count or 0
    held_later = max((request.held_count or 0) - (request.scoped_held or 0), 0)  # holds placed after scoping
    shortfall = expected - deleted - held_later
    if shortfall <= 0:
        return None
    subject = Q()
    for user_id in user_ids:
        subject |= Q(scope_pseudonymised__user_id__contains=[pseudonym(user_id)])
    since = request.scoped_at or request.received_at
    others = (
        DeletionJob.objects.filter(subject, parent__isnull=True)
        .filter(Q(finished_at__isnull=True) | Q(finished_at__gte=since))
        .exclude(kind=DeletionJob.Kind.ERASURE, requested_by=request.reference)
        .order_by("created_at")
    )
    jobs: list[dict[str, Any]] = [
        {
            "job": str(job.id),
            "kind": job.kind,
            # an erasure request's reference, an API key ("api-key:<id>"), "beat": never a subject id
            "requested_by": job.requested_by,
            "status": job.status,
            "deleted": job.deleted_count,
        }
        for job in others[:20]
    ]
    explained = sum(job["deleted"] for job in jobs)
    return {
        "scoped_deletable": expected,
        "deleted_by_this_request": deleted,
        "deleted_elsewhere": shortfall,
        "by_other_jobs": jobs,
        "not_attributed": max(shortfall - explained, 0),
    }


def erasure_attribution_sentence(*, verification: dict[str, Any]) -> str:
    """One plain sentence for the subject's mail (no identifiers), or "" when there is nothing to explain."""
    info = (verification or {}).get("erased_elsewhere")
    if not info:
        return ""
    references = sorted(
        {job["requested_by"] for job in info["by_other_jobs"] if job["kind"] == DeletionJob.Kind.ERASURE}
    )
    by = "another erasure request (" + ", ".join(references) + ")" if references else "another deletion"
    if info["by_other_jobs"] and len(references) < len(info["by_other_jobs"]):
        by = (
            f"{by} and a deletion through the memory API"
            if references
            else "a deletion through the memory API"
        )
    return (
        f"{info['deleted_elsewhere']} of the {info['scoped_deletable']} items in the scope of this request had "
        f"already been erased by {by} before this request reached them; this request erased "
        f"{info['deleted_by_this_request']}. Nothing of them remains.\n"
    )
