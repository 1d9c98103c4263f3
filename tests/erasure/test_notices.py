"""Notices to the subject and alerts to the privacy team: recorded in the move's transaction, sent after commit,
once each; a mail that cannot be sent stays recorded as failed and is retried, never lost silently."""

import datetime
import smtplib
import socket

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from erasure.models import ErasureRequest, State
from erasure.notices import outbox_deliver, staff_alerts_digest, staff_alerts_sweep
from erasure.notices_models import StaffAlert, SubjectNotice
from erasure.notices_tasks import NOTICE_MAX_RETRIES, notice_send_task
from erasure.services import (
    erasure_request_create,
    erasure_request_extend,
    erasure_request_fail,
    erasure_request_reject,
)
from tests.erasure.factories import request_in_state as make_request

pytestmark = pytest.mark.django_db
TEAM = ["dpo@example.test", "privacy@example.test"]


def _create(**kwargs) -> ErasureRequest:
    request, _token = erasure_request_create(
        regulation=kwargs.pop("regulation", "gdpr"),
        user_ids=["n-1"],
        email="notice-subject@example.test",
        channel=kwargs.pop("channel", "api"),
        actor="test",
    )
    return request


@override_settings(PRIVACY_TEAM_EMAILS=TEAM)
def test_the_receipt_and_the_new_request_alert_are_sent_after_commit_once_each(
    django_capture_on_commit_callbacks,
):
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        request = _create(regulation="ccpa")
        # then: recorded in the transaction, nothing sent before the commit
        assert {n.kind for n in request.notices.all()} == {"receipt"}
        assert {a.kind for a in request.staff_alerts.all()} == {"new"}
        assert mail.outbox == []
    assert len(callbacks) == 2  # the two send tasks, enqueued on commit
    outbox_deliver()
    outbox_deliver()  # a second delivery (a retry, the sweeper) sends nothing again
    alert, receipt = sorted(mail.outbox, key=lambda m: m.to)
    assert receipt.to == ["notice-subject@example.test"] and "45 days" in receipt.body
    assert request.due_at.strftime("%-d %B %Y") in receipt.body
    assert alert.to == TEAM and request.reference in alert.subject
    assert "notice-subject" not in alert.body and "n-1" not in alert.body  # no subject data to staff mail
    request.refresh_from_db()
    assert request.acknowledged_at is not None  # the CCPA acknowledgement is the sent receipt
    assert SubjectNotice.objects.get().sealed == ""  # the recipient is wiped once sent


def test_a_rolled_back_move_records_and_sends_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        _create()
        raise RuntimeError("rolled back")
    assert not SubjectNotice.objects.exists() and not StaffAlert.objects.exists()


def test_extension_and_rejection_notices_give_the_reason_and_under_gdpr_the_right_to_complain():
    request = _create()
    erasure_request_extend(request=request, actor="dpo", reason="many connected stores to search")
    erasure_request_reject(request=request, actor="dpo", reason="no_match", note="internal only")
    outbox_deliver()
    by_subject = {m.subject: m.body for m in mail.outbox}
    extension = next(b for s, b in by_subject.items() if "more time" in s)
    assert "many connected stores to search" in extension and "Art. 12(3)" in extension
    rejection = next(b for s, b in by_subject.items() if "could not be carried out" in s)
    assert "no data linked" in rejection and "supervisory authority" in rejection
    assert "internal only" not in rejection


def test_without_privacy_team_emails_alerts_are_recorded_unaddressed_and_the_failure_page_claims_nothing(
    client,
):
    request, token = erasure_request_create(
        regulation="gdpr", user_ids=["f-1"], email="f@example.test", channel="api", actor="t"
    )
    ErasureRequest.objects.filter(pk=request.pk).update(state=State.SCOPED, approved_at=timezone.now())
    request.refresh_from_db()
    erasure_request_fail(request=request, reason="deletion job failed")
    outbox_deliver()
    assert set(request.staff_alerts.values_list("kind", "status")) == {
        ("new", "unaddressed"),
        ("failed", "unaddressed"),
    }
    html = client.get(f"/privacy/status/{request.reference}/?token={token}").content.decode()
    assert "technical problem" in html and "alerted" not in html
    # with a team configured and the alert sent, the page may say so
    StaffAlert.objects.filter(request=request, kind="failed").update(status="sent")
    assert (
        "Our team has been alerted"
        in client.get(f"/privacy/status/{request.reference}/?token={token}").content.decode()
    )


@override_settings(PRIVACY_TEAM_EMAILS=TEAM)
def test_deadline_alerts_are_raised_once_per_request_and_condition_and_the_digest_once_a_day():
    today = timezone.localdate()
    overdue = make_request(user_ids=["o"], due_at=today - datetime.timedelta(days=1))
    soon = make_request(user_ids=["s"], due_at=today + datetime.timedelta(days=3))
    ack = make_request(user_ids=["a"], regulation="ccpa", email="", acknowledge_due_at=today)
    make_request(user_ids=["closed"], state=State.VERIFIED, due_at=today - datetime.timedelta(days=9))
    # when
    first = staff_alerts_sweep()
    second = staff_alerts_sweep()
    # then
    assert second == 0
    kinds = set(StaffAlert.objects.exclude(kind="new").values_list("request_id", "kind"))
    assert (
        (overdue.id, "overdue") in kinds and (soon.id, "due_soon") in kinds and (ack.id, "ack_due") in kinds
    )
    assert first == len(kinds)
    assert staff_alerts_digest() is not None and staff_alerts_digest() is None
    outbox_deliver()
    digest = next(m for m in mail.outbox if "digest" in m.subject)
    assert "Overdue: 1" in digest.body and digest.to == TEAM


class Refusing:
    """An SMTP server that refuses every recipient until told to accept."""

    accept = False

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if not self.accept:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.delivered = getattr(self, "delivered", 0) + 1
        return "250 Message accepted"


@pytest.mark.django_db(transaction=True)  # the task's own connection handling (config/celery.py) runs as well
def test_a_refusing_mail_server_leaves_the_notice_failed_and_retried_until_it_accepts():
    handler = Refusing()
    with (
        socket.socket() as probe
    ):  # a free port (aiosmtpd checks readiness by connecting to the port it was given)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": port,
            "EMAIL_USE_TLS": False,
            "EMAIL_USE_SSL": False,
            "EMAIL_HOST_USER": "",
            "EMAIL_HOST_PASSWORD": "",
        }
        with override_settings(**smtp):
            request = _create()
            notice = SubjectNotice.objects.get(request=request)
            # when: the task runs (eagerly here: each retry runs at once) against the refusing server
            notice_send_task.apply(args=[notice.id])
            # then: recorded as failed after every retry, with the SMTP code but no address
            notice.refresh_from_db()
            assert notice.status == "failed" and notice.attempts == NOTICE_MAX_RETRIES + 1
            assert notice.last_error == f"{smtplib.SMTPRecipientsRefused.__name__} 550"
            assert (
                "@" not in notice.last_error and notice.sealed
            )  # the recipient is kept (sealed) for a retry
            # when: the server accepts again and the notice is retried
            handler.accept = True
            notice_send_task.apply(args=[notice.id])
            notice.refresh_from_db()
            assert notice.status == "sent" and notice.sealed == "" and handler.delivered == 1
    finally:
        controller.stop()


def test_staff_record_the_acknowledgement_of_a_request_without_an_email(client):
    from django.contrib.auth import get_user_model

    request, _ = erasure_request_create(regulation="ccpa", user_ids=["ack-1"], channel="api", actor="t")
    client.force_login(get_user_model().objects.create_user("dpo", password="pw-123456789", is_staff=True))
    page = client.get(f"/privacy-team/requests/{request.pk}/").content.decode()
    assert "Record acknowledgement" in page
    client.post(f"/privacy-team/requests/{request.pk}/acknowledge/")
    request.refresh_from_db()
    assert request.acknowledged_at is not None
    assert request.audit_entries.filter(action="request.acknowledged").count() == 1
    client.post(f"/privacy-team/requests/{request.pk}/acknowledge/")
    assert request.audit_entries.filter(action="request.acknowledged").count() == 1
