"""Closed requests keep no personal data longer than needed: pseudonymised CLOSED_REQUEST_PII_DAYS after closing or
at once when another request of the subject is verified; purged REQUEST_RETENTION_MONTHS after closing, leaving a
count-only audit entry and an audit chain that still verifies."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from erasure.audit import audit_chain_recompute
from erasure.certificate import certificate_issue_once
from erasure.models import AuditEntry, Certificate, ErasureRequest, State
from erasure.privacy import closed_requests_sweep, months_before
from erasure.services import (
    erasure_request_approve,
    erasure_request_extend,
    erasure_request_reject,
    erasure_request_verify,
)
from memories import engine
from memories.pseudonyms import pseudonym
from tests.erasure.factories import canary_request
from tests.erasure.factories import request_in_state as make_request

pytestmark = pytest.mark.django_db

CANARY = "canary-7d41c2"
CANARY_MAIL = "canary.7d41c2@example.test"


def _rejected(user_ids, *, days_ago: float, email: str = CANARY_MAIL) -> ErasureRequest:
    request = make_request(user_ids=user_ids, email=email, identity_note="called from +1 555 0100")
    request = erasure_request_extend(request=request, actor="staff", reason=f"asked by {CANARY_MAIL}")
    request = erasure_request_reject(request=request, actor="staff", reason="no_match", note=f"no {CANARY}")
    ErasureRequest.objects.filter(id=request.id).update(rejected_at=timezone.now() - timedelta(days=days_ago))
    request.refresh_from_db()
    return request


def _holds_pii(request: ErasureRequest) -> bool:
    request.refresh_from_db()
    return bool(
        request.subject_user_ids
        or request.subject_email
        or request.identity_note
        or request.rejection_note
        or request.extension_reason
    )


def test_closed_requests_are_pseudonymised_after_the_configured_days_with_their_notes(settings):
    # given
    settings.CLOSED_REQUEST_PII_DAYS = 30
    due = _rejected([CANARY], days_ago=31)
    recent = _rejected(["someone-else"], days_ago=29, email="")
    still_open = make_request(user_ids=["open-one"])
    ErasureRequest.objects.filter(id=still_open.id).update(received_at=timezone.now() - timedelta(days=90))
    # when
    counts = closed_requests_sweep()
    # then
    assert counts == {"pseudonymised": 1, "purged": 0}
    assert not _holds_pii(due) and due.pseudonymised_at is not None
    assert due.subject_pseudonyms["user_ids"] == [pseudonym(CANARY)]  # still matchable by keyed hash
    assert due.rejection_reason == "no_match"  # the reason code stays (reports need it)
    assert _holds_pii(recent) and _holds_pii(still_open)
    assert AuditEntry.objects.filter(request=due, action="request.pseudonymised", actor="beat").count() == 1


def test_a_verified_request_pseudonymises_the_subjects_other_closed_requests_at_once():
    # given: a rejected request for the canary ids (yesterday), then a new one for the same ids is verified
    rejected = _rejected([CANARY, "canary-second-id"], days_ago=1)
    by_mail_only = _rejected(["unrelated-id"], days_ago=1)  # same e-mail address, other user id
    stranger = _rejected(["stranger-id"], days_ago=1, email="stranger@example.test")
    request = erasure_request_approve(
        request=make_request(state=State.SCOPED, user_ids=[CANARY], email=""), actor="staff"
    )
    engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))
    # when
    erasure_request_verify(request_id=request.id)
    # then
    assert not _holds_pii(rejected)
    assert _holds_pii(by_mail_only)  # the verified request named no e-mail: nothing ties them
    assert _holds_pii(stranger)


def test_the_e_mail_pseudonym_ties_requests_of_the_same_subject():
    rejected = _rejected(["id-a"], days_ago=1)
    request = erasure_request_approve(
        request=make_request(state=State.SCOPED, user_ids=["id-b"], email=CANARY_MAIL.upper()), actor="staff"
    )
    engine.deletion_job_run(job_id=request.deletion_job_id, budget_seconds=float("inf"))

    erasure_request_verify(request_id=request.id)

    assert not _holds_pii(rejected)


def test_closed_request_records_are_purged_after_the_retention_months_and_the_chain_still_verifies(settings):
    # given: closed requests 25 months ago (verified with a stored certificate, rejected, cancelled), one closed
    # 23 months ago, and one that failed 30 months ago (not closed: kept)
    settings.REQUEST_RETENTION_MONTHS = 24
    now = timezone.now()
    verified = canary_request(received_at=now - timedelta(days=800))
    certificate_issue_once(request=verified, actor="test")
    ErasureRequest.objects.filter(id=verified.id).update(verified_at=now - timedelta(days=25 * 31))
    rejected = _rejected(["old-rejected"], days_ago=25 * 31)
    cancelled = make_request(user_ids=["old-cancelled"], state=State.CANCELLED)
    ErasureRequest.objects.filter(id=cancelled.id).update(cancelled_at=now - timedelta(days=25 * 31))
    young = _rejected(["young"], days_ago=23 * 30)
    failed = make_request(user_ids=["failed"], state=State.FAILED)
    ErasureRequest.objects.filter(id=failed.id).update(failed_at=now - timedelta(days=30 * 31))
    purged_ids = [verified.id, rejected.id, cancelled.id]
    entries_before = {e.id: e.entry_hash for e in AuditEntry.objects.filter(request_id__in=purged_ids)}
    assert entries_before
    # when
    counts = closed_requests_sweep()
    # then: the three old closed records are gone, with the certificate; the others stay
    assert counts["purged"] == 3
    remaining = set(ErasureRequest.objects.values_list("id", flat=True))
    assert remaining == {young.id, failed.id}
    assert not Certificate.objects.exists()
    # their audit entries stay as they were, and one entry states the purge by its count only
    after = {e.id: e.entry_hash for e in AuditEntry.objects.filter(request_id__in=purged_ids)}
    assert entries_before.items() <= after.items()  # (plus the pseudonymisation entries of the sweep)
    purge = AuditEntry.objects.get(action="requests.purged")
    assert purge.data == {"count": 3, "closed_before": months_before(now, 24).date().isoformat()}
    assert purge.request_id is None and purge.reference == ""
    report = audit_chain_recompute()
    assert report.ok, report.reason
    # and a second sweep finds nothing more to do
    assert closed_requests_sweep() == {"pseudonymised": 0, "purged": 0}


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 3, 31, 12, tzinfo=UTC), 1, datetime(2026, 2, 28, 12, tzinfo=UTC)),
        (datetime(2028, 3, 31, tzinfo=UTC), 1, datetime(2028, 2, 29, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 24, datetime(2024, 1, 15, tzinfo=UTC)),
        (datetime(2026, 1, 15, tzinfo=UTC), 13, datetime(2024, 12, 15, tzinfo=UTC)),
    ],
)
def test_months_before_counts_calendar_months(moment, months, expected):
    assert months_before(moment, months) == expected
