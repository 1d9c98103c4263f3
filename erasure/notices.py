"""Mails about a request: notices to the data subject (receipt, verification, extension, rejection, completion)
and alerts to the privacy team (new request, acknowledgement due, due within 7 days, overdue, failed, and a daily
digest). Each is a row written in the transaction of the move it reports (an outbox) and sent after commit by a
task that takes its id and retries; a mail that cannot be sent stays recorded as failed and is shown to staff.

Subject notices hold their recipient encrypted (key derived from SECRET_KEY) until sent, then wipe it: the
request's own e-mail may already be pseudonymised when the completion notice goes out.
"""

import base64
import hashlib
import json
import logging
import smtplib
from datetime import timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from memories.models import DeletionJob

from .models import Channel, ErasureRequest, Regulation, State
from .notices_models import DeliveryStatus, StaffAlert, SubjectNotice

logger = logging.getLogger(__name__)

NOTICE_MAX_ATTEMPTS = 10  # by the task's back-off (30 s … 1 h) and the beat sweeper, about half a day
DUE_SOON_DAYS = 7
ACK_WARN_DAYS = 2

SUBJECTS = {
    SubjectNotice.Kind.RECEIPT: "We received your erasure request {reference}",
    SubjectNotice.Kind.VERIFICATION: "Please confirm your e-mail address for request {reference}",
    SubjectNotice.Kind.EXTENSION: "Your erasure request {reference}: we need more time",
    SubjectNotice.Kind.REJECTION: "Your erasure request {reference} could not be carried out",
    SubjectNotice.Kind.COMPLETION: "Your erasure request {reference} is complete",
    SubjectNotice.Kind.HOLD_RELEASE: "Your erasure request {reference}: data kept under a legal hold is now erased",
}
ALERT_SUBJECTS = {
    StaffAlert.Kind.NEW: "New erasure request {reference}",
    StaffAlert.Kind.ACK_DUE: "Acknowledgement due for {reference}",
    StaffAlert.Kind.DUE_SOON: "{reference} is due within 7 days",
    StaffAlert.Kind.OVERDUE: "{reference} is overdue",
    StaffAlert.Kind.FAILED: "Erasure {reference} failed",
    StaffAlert.Kind.DIGEST: "Erasure requests: daily digest {day}",
}


# --- sealing the recipient ------------------------------------------------------------------------------------


def _fernet() -> Fernet:
    key = hashlib.sha256(f"{settings.SECRET_KEY}:erasure-notices".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(data: dict[str, Any]) -> str:
    return _fernet().encrypt(json.dumps(data).encode()).decode()


def unseal(sealed: str) -> dict[str, Any]:
    if not sealed:
        return {}
    try:
        return dict(json.loads(_fernet().decrypt(sealed.encode())))
    except (InvalidToken, ValueError):
        return {}


def describe_error(exc: BaseException) -> str:
    """Class name and SMTP code only: SMTP messages often quote the recipient's address."""
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(v[0]) for v in exc.recipients.values()})
        return f"{type(exc).__name__} {','.join(codes)}"[:200]
    return f"{type(exc).__name__}{f' {code}' if code else ''}"[:200]


# --- queueing -------------------------------------------------------------------------------------------------


def notice_queue(
    *, request: ErasureRequest, kind: str, secrets: dict[str, Any] | None = None, again: bool = False
) -> SubjectNotice | None:
    """Records a notice to the request's e-mail (once per kind; `again` re-arms an existing one, e.g. a new
    verification link) and sends it after commit. None when the request has no e-mail."""
    if not request.subject_email:
        return None
    now = timezone.now()
    sealed = seal({"to": request.subject_email, **(secrets or {})})
    notice, created = SubjectNotice.objects.get_or_create(
        request=request,
        kind=kind,
        defaults={"sealed": sealed, "created_at": now, "updated_at": now},
    )
    if not created:
        if not again:
            return notice
        notice.sealed, notice.status, notice.attempts, notice.last_error = (
            sealed,
            DeliveryStatus.PENDING,
            0,
            "",
        )
        notice.updated_at, notice.sent_at = now, None
        notice.save()
    _enqueue("notice", notice.id)
    return notice


def hold_release_notice_prepare(*, request: ErasureRequest) -> SubjectNotice | None:
    """At verification, before the e-mail is pseudonymised: when a hold kept part of the subject's data, the
    recipient is kept sealed in a waiting notice, so the subject can be told once those memories are erased after
    the hold ends (hold_release_notice_send). None without held memories or e-mail."""
    if not request.held_count or not request.subject_email:
        return None
    now = timezone.now()
    notice, _created = SubjectNotice.objects.get_or_create(
        request=request,
        kind=SubjectNotice.Kind.HOLD_RELEASE,
        defaults={
            "sealed": seal({"to": request.subject_email}),
            "status": DeliveryStatus.WAITING,
            "created_at": now,
            "updated_at": now,
        },
    )
    return notice


def hold_release_notice_send(*, request: ErasureRequest) -> SubjectNotice:
    """Released memories were erased under the request: tells the subject (sent after commit) through the waiting
    notice's sealed recipient, or the request's e-mail if it still has one. With neither (no e-mail given, or the
    notice already spent) the notice is recorded as unaddressed, not sent, and shown to staff."""
    kind = SubjectNotice.Kind.HOLD_RELEASE
    now = timezone.now()
    notice = SubjectNotice.objects.select_for_update().filter(request=request, kind=kind).first()
    if notice is None and request.subject_email:
        return notice_queue(request=request, kind=kind) or SubjectNotice()  # (never None with an e-mail)
    if notice is None:
        notice = SubjectNotice(request=request, kind=kind, created_at=now)
    if unseal(notice.sealed).get("to"):
        notice.status, notice.attempts, notice.last_error, notice.sent_at = (
            DeliveryStatus.PENDING,
            0,
            "",
            None,
        )
        notice.updated_at = now
        notice.save()
        _enqueue("notice", notice.id)
        return notice
    notice.status, notice.last_error, notice.updated_at = DeliveryStatus.UNADDRESSED, "no recipient", now
    notice.save()
    return notice


def alert_raise(*, request: ErasureRequest | None, kind: str, day: Any = None) -> StaffAlert | None:
    """Records one staff alert per request and condition (a unique constraint: never repeated) and sends it
    after commit (`unaddressed` at once when PRIVACY_TEAM_EMAILS is empty). None when it was raised before."""
    now = timezone.now()
    # With nobody to tell, the alert is recorded as such at once (what alert_send would do): no task, no message.
    status = DeliveryStatus.PENDING if privacy_team_emails() else DeliveryStatus.UNADDRESSED
    try:
        with transaction.atomic():
            alert = StaffAlert.objects.create(
                request=request, kind=kind, day=day, status=status, created_at=now, updated_at=now
            )
    except IntegrityError:
        return None
    if status == DeliveryStatus.PENDING:
        _enqueue("alert", alert.id)
    return alert


def _enqueue(what: str, row_id: int) -> None:
    from . import notices_tasks

    task = notices_tasks.notice_send_task if what == "notice" else notices_tasks.alert_send_task
    transaction.on_commit(lambda: task.delay(row_id))


# --- the moves' follow-ups ------------------------------------------------------------------------------------


def request_created(*, request: ErasureRequest, raw_token: str) -> None:
    """Follow-ups of a new request: the receipt (with the secret status link) to the subject, the verification
    mail for a form request, the `new` staff alert. Runs inside the creating transaction."""
    from .identity import identity_challenge_create

    if request.channel != Channel.DRP:  # an agent tells its user; we tell the agent
        notice_queue(request=request, kind=SubjectNotice.Kind.RECEIPT, secrets={"token": raw_token})
    if request.channel == Channel.FORM and request.subject_email:
        identity_challenge_create(request=request)
    alert_raise(request=request, kind=StaffAlert.Kind.NEW)


def request_event(*, request: ErasureRequest, event: str) -> None:
    """Follow-ups of a move (event: identity_verified, approved, extended, rejected, cancelled, failed, verified): the
    subject's notice, the staff alert, the DRP status callback. Runs inside the move's transaction."""
    kind = {
        "extended": SubjectNotice.Kind.EXTENSION,
        "rejected": SubjectNotice.Kind.REJECTION,
        "verified": SubjectNotice.Kind.COMPLETION,
    }.get(event)
    if kind and request.channel != Channel.DRP:
        notice_queue(request=request, kind=kind)
        if event == "verified":
            hold_release_notice_prepare(request=request)
    if event == "failed":
        alert_raise(request=request, kind=StaffAlert.Kind.FAILED)
    if request.channel == Channel.DRP:
        from .drp.services import drp_status_changed

        drp_status_changed(erasure=request)


def erasure_request_acknowledge(*, request: ErasureRequest, actor: str) -> bool:
    """Staff record that they acknowledged the request by other means (a request without an e-mail gets no
    receipt). True if it was not acknowledged before. Side effects: acknowledged_at, one audit entry."""
    from .audit import audit_append

    with transaction.atomic():
        done = ErasureRequest.objects.filter(id=request.id, acknowledged_at__isnull=True).update(
            acknowledged_at=timezone.now(), updated_at=timezone.now()
        )
        if done:
            request.refresh_from_db()
            audit_append(
                actor=actor, action="request.acknowledged", request=request, data={"state": request.state}
            )
    return bool(done)


# --- sending --------------------------------------------------------------------------------------------------


def _held_grounds(request: ErasureRequest) -> list[str]:
    """The Art. 17(3) grounds of the legal holds that kept part of the subject's data (labels, no scope)."""
    from memories.models import LegalHold

    if not request.held_count:
        return []
    labels = dict(LegalHold.Reason.choices)
    reasons = LegalHold.objects.filter(lifted_at__isnull=True).values_list("reason", flat=True).distinct()
    return sorted(str(labels.get(r, r)) for r in reasons)


def notice_context(request: ErasureRequest, payload: dict[str, Any]) -> dict[str, Any]:
    from .attribution import erasure_attribution_sentence
    from .forms import REJECTION_REASON_TEXT
    from .identity import challenge_code, code_page_link, verification_link
    from .identity_models import IdentityChallenge
    from .services.messages import status_link

    context: dict[str, Any] = {
        "r": request,
        "gdpr": request.regulation == Regulation.GDPR,
        "site_url": settings.SITE_URL,
        "held_grounds": _held_grounds(request),
        "reason_text": REJECTION_REASON_TEXT.get(request.rejection_reason, ""),
        # what other jobs erased before this request reached it (erasure/attribution.py), in one plain sentence
        "attribution": erasure_attribution_sentence(verification=request.verification),
    }
    if request.hold_releases.exists():
        from django.db.models import Sum

        jobs = request.hold_releases.filter(deletion_job__status=DeletionJob.Status.SUCCEEDED).aggregate(
            erased=Sum("deletion_job__deleted_count"), held=Sum("deletion_job__held_count")
        )
        context.update(supplement_erased=jobs["erased"] or 0, supplement_held=jobs["held"] or 0)
    if payload.get("token"):
        context["status_url"] = status_link(request, payload["token"])
    if payload.get("challenge"):
        challenge = IdentityChallenge.objects.filter(id=payload["challenge"]).first()
        if challenge is not None:
            context.update(
                link=verification_link(challenge),
                code=challenge_code(challenge),
                code_page=code_page_link(request),
                expires_at=challenge.expires_at,
            )
    return context


def _still_held(request: ErasureRequest) -> bool:
    """Whether memories the request's erasure kept are not yet erased under it (a later release may need the
    hold-release notice's recipient again)."""
    from django.db.models import Sum

    erased = request.hold_releases.filter(deletion_job__status=DeletionJob.Status.SUCCEEDED).aggregate(
        n=Sum("deletion_job__deleted_count")
    )["n"]
    return (erased or 0) < (request.held_count or 0)


def notice_send(*, notice_id: int) -> bool:
    """Sends one subject notice (the row locked meanwhile, so two deliveries never both send; only the notice's
    own row: staff moving the request at the same time must not make a delivery skip it). True when sent (or
    nothing left to send). Side effects: the row (status, attempts, last_error; recipient wiped once sent),
    acknowledged_at after the receipt, notified_at after the completion notice."""
    with transaction.atomic():
        notice = (
            SubjectNotice.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("request")
            .filter(id=notice_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
            .first()
        )
        if notice is None:
            return True
        payload = unseal(notice.sealed)
        now = timezone.now()
        if not payload.get("to"):
            notice.status, notice.last_error, notice.updated_at = DeliveryStatus.FAILED, "no recipient", now
            notice.save(update_fields=["status", "last_error", "updated_at"])
            return True  # nothing a retry could fix; staff see it
        request = notice.request
        body = render_to_string(f"erasure/mail/{notice.kind}.txt", notice_context(request, payload))
        subject = SUBJECTS[SubjectNotice.Kind(notice.kind)].format(reference=request.reference)
        notice.attempts += 1
        notice.updated_at = now
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [payload["to"]], fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any transport error is recorded and retried
            notice.status, notice.last_error = DeliveryStatus.FAILED, describe_error(exc)
            notice.save(update_fields=["status", "last_error", "attempts", "updated_at"])
            logger.warning("subject notice failed", extra={"notice": notice.id, "error": notice.last_error})
            return False
        keep = notice.kind == SubjectNotice.Kind.HOLD_RELEASE and _still_held(request)
        notice.status, notice.sent_at, notice.last_error = DeliveryStatus.SENT, now, ""
        notice.sealed = notice.sealed if keep else ""
        notice.save(update_fields=["status", "sent_at", "sealed", "last_error", "attempts", "updated_at"])
        if notice.kind == SubjectNotice.Kind.RECEIPT:
            ErasureRequest.objects.filter(id=request.id, acknowledged_at__isnull=True).update(
                acknowledged_at=now
            )
        elif notice.kind == SubjectNotice.Kind.COMPLETION:
            ErasureRequest.objects.filter(id=request.id, notified_at__isnull=True).update(notified_at=now)
    logger.info("subject notice sent", extra={"notice": notice_id})
    return True


def privacy_team_emails() -> list[str]:
    return list(getattr(settings, "PRIVACY_TEAM_EMAILS", []) or [])


def alert_context(alert: StaffAlert) -> dict[str, Any]:
    from . import deadlines

    context: dict[str, Any] = {"alert": alert, "site_url": settings.SITE_URL, "r": alert.request}
    if alert.request is not None:
        context["days_left"] = deadlines.days_left(alert.request)
    else:
        context["digest"] = staff_digest()
    return context


def alert_send(*, alert_id: int) -> bool:
    """Sends one staff alert to PRIVACY_TEAM_EMAILS. With nobody configured it is recorded as `unaddressed`
    (shown in the console). True when done; False when the mail failed (the task retries)."""
    with transaction.atomic():
        alert = (
            StaffAlert.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("request")
            .filter(id=alert_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
            .first()
        )
        if alert is None:
            return True
        now = timezone.now()
        alert.updated_at = now
        recipients = privacy_team_emails()
        if not recipients:
            alert.status = DeliveryStatus.UNADDRESSED
            alert.save(update_fields=["status", "updated_at"])
            return True
        ref = alert.request.reference if alert.request else ""
        subject = ALERT_SUBJECTS[StaffAlert.Kind(alert.kind)].format(reference=ref, day=alert.day)
        body = render_to_string("erasure/mail/staff_alert.txt", alert_context(alert))
        alert.attempts += 1
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
        except Exception as exc:  # noqa: BLE001
            alert.status, alert.last_error = DeliveryStatus.FAILED, describe_error(exc)
            alert.save(update_fields=["status", "last_error", "attempts", "updated_at"])
            logger.warning("staff alert failed", extra={"alert": alert.id, "error": alert.last_error})
            return False
        alert.status, alert.sent_at, alert.last_error = DeliveryStatus.SENT, now, ""
        alert.save(update_fields=["status", "sent_at", "last_error", "attempts", "updated_at"])
    return True


def team_alerted(request: ErasureRequest, kind: str) -> bool:
    """Whether an alert of this kind about the request actually reached the privacy team."""
    return StaffAlert.objects.filter(request=request, kind=kind, status=DeliveryStatus.SENT).exists()


# --- the sweeps (beat) ----------------------------------------------------------------------------------------


def _open() -> Any:
    from .selectors import OPEN_STATES

    return ErasureRequest.objects.filter(state__in=OPEN_STATES)


def staff_alerts_sweep() -> int:
    """Raises the deadline alerts due now (each once per request): acknowledgement due (CCPA, not acknowledged,
    due within ACK_WARN_DAYS), due within DUE_SOON_DAYS, overdue, and failed requests missed by the move's own
    alert. Returns how many were raised."""
    today = timezone.localdate()
    raised = 0
    conditions = [
        (
            StaffAlert.Kind.ACK_DUE,
            Q(
                regulation=Regulation.CCPA,
                acknowledged_at__isnull=True,
                acknowledge_due_at__lte=today + timedelta(days=ACK_WARN_DAYS),
            ),
        ),
        (StaffAlert.Kind.DUE_SOON, Q(due_at__gte=today, due_at__lte=today + timedelta(days=DUE_SOON_DAYS))),
        (StaffAlert.Kind.OVERDUE, Q(due_at__lt=today)),
        (StaffAlert.Kind.FAILED, Q(state=State.FAILED)),
    ]
    for kind, condition in conditions:
        candidates = _open().filter(condition).exclude(staff_alerts__kind=kind)
        for request in candidates.iterator(chunk_size=500):
            with transaction.atomic():
                raised += alert_raise(request=request, kind=kind) is not None
    return raised


def staff_digest() -> dict[str, Any]:
    """Counts for the daily digest (no subject data)."""
    from .selectors import erasure_request_filter_overdue

    today = timezone.localdate()
    open_qs = _open()
    return {
        "open": open_qs.count(),
        "identity_pending": open_qs.filter(identity_status="pending").count(),
        "overdue": erasure_request_filter_overdue(open_qs, overdue=True).count(),
        "due_soon": open_qs.filter(
            due_at__gte=today, due_at__lte=today + timedelta(days=DUE_SOON_DAYS)
        ).count(),
        "failed": open_qs.filter(state=State.FAILED).count(),
        "notices_failed": SubjectNotice.objects.filter(status=DeliveryStatus.FAILED).count(),
        "alerts_failed": StaffAlert.objects.filter(status=DeliveryStatus.FAILED).count(),
    }


def staff_alerts_digest() -> StaffAlert | None:
    with transaction.atomic():
        return alert_raise(request=None, kind=StaffAlert.Kind.DIGEST, day=timezone.localdate())


def notices_resume(*, stale_seconds: float = 600) -> int:
    """Re-enqueues notices and alerts whose task message was lost (pending, untouched for stale_seconds) or whose
    task gave up while attempts remain (failed, untouched for an hour). Returns how many."""
    now = timezone.now()
    lost = Q(status=DeliveryStatus.PENDING, updated_at__lt=now - timedelta(seconds=stale_seconds))
    retry = Q(
        status=DeliveryStatus.FAILED,
        attempts__lt=NOTICE_MAX_ATTEMPTS,
        updated_at__lt=now - timedelta(hours=1),
    )
    count = 0
    with transaction.atomic():
        for notice_id in SubjectNotice.objects.filter(lost | retry).values_list("id", flat=True)[:500]:
            _enqueue("notice", notice_id)
            count += 1
        for alert_id in StaffAlert.objects.filter(lost | retry).values_list("id", flat=True)[:500]:
            _enqueue("alert", alert_id)
            count += 1
    return count


def outbox_deliver() -> int:
    """Sends every pending or failed notice and alert now, in this process (what the tasks do; for the shell and
    for tests without a worker). Returns how many were sent or settled."""
    done = 0
    for notice_id in SubjectNotice.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]
    ).values_list("id", flat=True):
        done += notice_send(notice_id=notice_id)
    for alert_id in StaffAlert.objects.filter(
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]
    ).values_list("id", flat=True):
        done += alert_send(alert_id=alert_id)
    return done
