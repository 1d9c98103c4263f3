"""The console for a team (erasure/console.py, erasure/views/staff_console.py): masked subjects, duplicate flags,
search, sort, assignment, bulk actions, the dashboard's arithmetic, readable audit trail and counts, and
four-eyes approval in the API and the console."""

import datetime

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from erasure import console
from erasure.models import AuditEntry, ErasureRequest, State
from erasure.services import (
    SecondStaffRequired,
    erasure_request_approve,
    erasure_request_assign,
    erasure_request_pseudonymise,
    erasure_request_scope,
)
from memories.services import api_key_create, memories_add
from tests.erasure.factories import request_in_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("dpo", password="correct-horse-battery", is_staff=True)


@pytest.fixture
def colleague(db):
    return get_user_model().objects.create_user("second", password="correct-horse-battery", is_staff=True)


@pytest.fixture
def staff_client(staff):
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def colleague_client(colleague):
    client = Client()
    client.force_login(colleague)
    return client


def _detail(erasure) -> str:
    return f"/privacy-team/requests/{erasure.pk}/"


# --- masking -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "email, masked",
    [("alice@example.com", "a***@example.com"), ("b@x.org", "b***@x.org"), ("", ""), ("no-at-sign", "n***")],
)
def test_an_email_is_masked_to_its_first_letter_and_domain(email, masked):
    assert console.mask_email(email) == masked


@pytest.mark.parametrize(
    "user_id, masked",
    [("abc", "***"), ("user-1", "u***"), ("user-12345", "us***45"), ("customer-000123", "cu***23")],
)
def test_a_user_id_is_masked_so_that_at_most_four_characters_show(user_id, masked):
    assert console.mask_user_id(user_id) == masked


def test_the_queue_shows_the_subject_masked_never_in_clear(staff_client):
    request_in_state(user_ids=["customer-000123", "second-id-42"], email="alice@example.com")
    html = staff_client.get("/privacy-team/").content.decode()
    assert "cu***23" in html and "+1" in html and "a***@example.com" in html
    assert "customer-000123" not in html and "alice@example.com" not in html and "second-id-42" not in html


def test_a_pseudonymised_request_shows_as_pseudonymised_in_the_queue(staff_client):
    erasure = request_in_state(state=State.VERIFIED, user_ids=["gone-subject"])
    erasure_request_pseudonymise(request=erasure, actor="test")
    html = staff_client.get("/privacy-team/").content.decode()
    assert "pseudonymised" in html and "gone-subject" not in html


# --- duplicates ----------------------------------------------------------------------------------------------


def test_two_open_requests_sharing_a_user_id_are_flagged_as_duplicates_of_each_other():
    first = request_in_state(user_ids=["dup-a", "dup-b"], email="one@example.test")
    second = request_in_state(user_ids=["dup-b"], email="two@example.test", state=State.SCOPED)
    other = request_in_state(user_ids=["someone"], email="three@example.test")
    flags = console.duplicates([first, second, other])
    assert flags == {first.id: [second.reference], second.id: [first.reference]}


def test_the_same_email_alone_flags_a_duplicate():
    first = request_in_state(user_ids=["mail-1"], email="Same@Example.test")
    second = request_in_state(user_ids=["mail-2"], email="same@example.test")
    assert console.duplicates([first])[first.id] == [second.reference]


def test_a_closed_request_is_not_a_duplicate_but_a_closed_one_sees_the_open_one():
    # given: a verified (pseudonymised: no clear identifiers left) and an open request of the same subject
    closed = request_in_state(user_ids=["returning"], state=State.VERIFIED)
    erasure_request_pseudonymise(request=closed, actor="test")
    closed.refresh_from_db()
    open_one = request_in_state(user_ids=["returning"])
    # then: matched by the pseudonyms the closed request keeps
    flags = console.duplicates([closed, open_one])
    assert open_one.id not in flags
    assert flags[closed.id] == [open_one.reference]


def test_the_queue_marks_the_duplicate_with_the_other_reference(staff_client):
    first = request_in_state(user_ids=["q-dup"], email="q1@example.test")
    second = request_in_state(user_ids=["q-dup"], email="q2@example.test")
    html = staff_client.get("/privacy-team/").content.decode()
    assert f"duplicate of {second.reference}" in html and f"duplicate of {first.reference}" in html


def test_the_detail_page_links_the_other_open_request_of_the_same_subject(staff_client):
    first = request_in_state(user_ids=["detail-dup"], email="dd1@example.test")
    second = request_in_state(user_ids=["detail-dup"], email="dd2@example.test")
    html = staff_client.get(_detail(first)).content.decode()
    assert "Another open request for the same subject" in html and f"{_detail(second)}" in html
    lone = request_in_state(user_ids=["alone"], email="alone@example.test")
    assert "Another open request" not in staff_client.get(_detail(lone)).content.decode()


# --- search, sort, acknowledgement, assignment ---------------------------------------------------------------


def test_search_by_reference_finds_a_request_by_a_fragment(staff_client):
    wanted = request_in_state(user_ids=["s-1"], email="s1@example.test")
    other = request_in_state(user_ids=["s-2"], email="s2@example.test")
    html = staff_client.get("/privacy-team/", {"q": wanted.reference[-6:]}).content.decode()
    assert wanted.reference in html and other.reference not in html


def test_sort_by_due_date_lists_the_soonest_first_and_the_reverse(staff_client):
    today = timezone.localdate()
    late = request_in_state(
        user_ids=["d-1"], email="d1@example.test", due_at=today + datetime.timedelta(days=20)
    )
    soon = request_in_state(
        user_ids=["d-2"], email="d2@example.test", due_at=today + datetime.timedelta(days=2)
    )
    mid = request_in_state(
        user_ids=["d-3"], email="d3@example.test", due_at=today + datetime.timedelta(days=9)
    )

    def order(html: str) -> list[str]:
        refs = {r.reference: html.index(r.reference) for r in (late, soon, mid)}
        return sorted(refs, key=refs.get)

    ascending = staff_client.get("/privacy-team/", {"sort": "due"}).content.decode()
    assert order(ascending) == [soon.reference, mid.reference, late.reference]
    assert 'aria-sort="ascending"' in ascending
    descending = staff_client.get("/privacy-team/", {"sort": "-due"}).content.decode()
    assert order(descending) == [late.reference, mid.reference, soon.reference]


def test_the_acknowledgement_column_says_sent_due_or_late():
    today = timezone.localdate()
    sent = request_in_state(regulation="ccpa")
    due = request_in_state(regulation="ccpa", email="", acknowledge_due_at=today + datetime.timedelta(days=3))
    late = request_in_state(
        regulation="ccpa", email="", acknowledge_due_at=today - datetime.timedelta(days=1)
    )
    gdpr = request_in_state(email="")
    assert console.acknowledgement(sent, today)["status"] == "sent"
    assert console.acknowledgement(due, today) == {"status": "due", "at": today + datetime.timedelta(days=3)}
    assert console.acknowledgement(late, today)["status"] == "late"
    assert console.acknowledgement(gdpr, today)["status"] == "none"


def test_assignment_is_audited_and_refuses_accounts_outside_the_team(staff, colleague):
    erasure = request_in_state()
    erasure = erasure_request_assign(request=erasure, assignee=colleague, actor="dpo")
    assert erasure.assigned_to == colleague
    entry = AuditEntry.objects.get(request=erasure, action="request.assigned")
    assert (
        entry.actor == "dpo"
        and entry.data["assigned_to"] == "second"
        and entry.data["assigned_before"] is None
    )
    outsider = get_user_model().objects.create_user("outsider", password="x-correct-horse")
    with pytest.raises(Exception, match="privacy team"):
        erasure_request_assign(request=erasure, assignee=outsider, actor="dpo")


def test_a_closed_request_cannot_be_assigned(colleague):
    erasure = request_in_state(state=State.VERIFIED)
    with pytest.raises(Exception, match="not allowed while the request is verified"):
        erasure_request_assign(request=erasure, assignee=colleague, actor="dpo")
    assert not AuditEntry.objects.filter(request=erasure, action="request.assigned").exists()


def test_assign_from_the_detail_page_and_filter_assigned_to_me(staff_client, staff, colleague):
    mine = request_in_state(user_ids=["m-1"], email="m1@example.test")
    theirs = request_in_state(user_ids=["m-2"], email="m2@example.test")
    staff_client.post(f"{_detail(mine)}assign/", {"assignee": staff.pk}, follow=True)
    staff_client.post(f"{_detail(theirs)}assign/", {"assignee": colleague.pk}, follow=True)
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.assigned_to == staff and theirs.assigned_to == colleague
    html = staff_client.get("/privacy-team/", {"mine": "on"}).content.decode()
    assert mine.reference in html and theirs.reference not in html


# --- bulk actions --------------------------------------------------------------------------------------------


def test_bulk_extend_goes_through_the_service_and_reports_each_request(staff_client):
    # given: one open, one already extended, one closed
    fresh = request_in_state(user_ids=["b-1"], email="b1@example.test")
    extended = request_in_state(
        user_ids=["b-2"], email="b2@example.test", extended_at=timezone.now(), extension_reason="earlier"
    )
    closed = request_in_state(user_ids=["b-3"], email="b3@example.test", state=State.VERIFIED)
    due_before = fresh.due_at
    # when
    response = staff_client.post(
        "/privacy-team/requests/bulk/",
        {
            "ids": [str(fresh.pk), str(extended.pk), str(closed.pk)],
            "bulk_action": "extend",
            "reason": "complex",
        },
    )
    # then: only the fresh one is extended, with the reason and an audit entry; each outcome is on the page
    html = response.content.decode()
    assert response.status_code == 200
    assert "1 done, 2 refused" in html
    fresh.refresh_from_db()
    assert fresh.due_at > due_before and fresh.extension_reason == "complex"
    assert AuditEntry.objects.filter(action="request.extended").count() == 1
    assert "already extended once" in html and "not possible while it is verified" in html


def test_bulk_extend_without_a_reason_changes_nothing(staff_client):
    erasure = request_in_state()
    response = staff_client.post(
        "/privacy-team/requests/bulk/", {"ids": [str(erasure.pk)], "bulk_action": "extend", "reason": " "}
    )
    assert response.status_code == 302
    erasure.refresh_from_db()
    assert erasure.extended_at is None


def test_bulk_assign_assigns_every_open_request(staff_client, colleague):
    a = request_in_state(user_ids=["ba-1"], email="ba1@example.test")
    b = request_in_state(user_ids=["ba-2"], email="ba2@example.test", state=State.SCOPED)
    html = staff_client.post(
        "/privacy-team/requests/bulk/",
        {"ids": [str(a.pk), str(b.pk), "not-a-uuid"], "bulk_action": "assign", "assignee": colleague.pk},
    ).content.decode()
    assert "2 done" in html and "assigned to second" in html and "1 ticked request was not found" in html
    assert ErasureRequest.objects.filter(assigned_to=colleague).count() == 2
    assert AuditEntry.objects.filter(action="request.assigned", actor="dpo").count() == 2


# --- dashboard -----------------------------------------------------------------------------------------------


def test_dashboard_counts_open_states_due_soon_overdue_and_the_on_time_rate():
    today = timezone.localdate()
    now = timezone.now()
    request_in_state(due_at=today + datetime.timedelta(days=3))  # due soon
    request_in_state(due_at=today - datetime.timedelta(days=2))  # overdue
    request_in_state(state=State.SCOPED, approved_at=now)  # erasing
    request_in_state(state=State.SCOPED)
    request_in_state(state=State.FAILED)
    # answered in the window: two on time, one late; one answered long ago (outside the window)
    request_in_state(state=State.VERIFIED, verified_at=now, due_at=today)
    request_in_state(state=State.REJECTED, rejected_at=now, due_at=today + datetime.timedelta(days=5))
    request_in_state(state=State.VERIFIED, verified_at=now, due_at=today - datetime.timedelta(days=1))
    request_in_state(
        state=State.VERIFIED,
        verified_at=now - datetime.timedelta(days=120),
        due_at=today - datetime.timedelta(days=200),
    )
    figures = console.dashboard(today=today)
    counts = figures["counts"]
    assert (counts["received"], counts["scoped"], counts["erasing"], counts["failed"]) == (2, 1, 1, 1)
    assert counts["total"] == 5 and counts["overdue"] == 1
    assert counts["due_soon"] >= 1  # the one due in 3 days (others are due in about a month)
    assert figures["answered"] == {"total": 3, "on_time": 2} and figures["on_time_rate"] == 67
    assert figures["received_week_total"] == 9  # all received today
    widths = {row["label"]: row["width"] for row in figures["by_state"]}
    assert widths["received"] == 100 and widths["erasing"] == 50


def test_dashboard_page_draws_its_charts_as_inline_svg_without_scripts(staff_client):
    request_in_state()
    response = staff_client.get("/privacy-team/dashboard/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and 'class="bar-fill' in html
    assert "<script" not in html and "http://" not in html.split("</head>")[0].replace(
        "http://testserver", ""
    )


# --- readable audit trail and counts -------------------------------------------------------------------------


def test_audit_rows_are_numbered_from_one_and_flatten_nested_data():
    erasure = request_in_state()
    entries = [
        AuditEntry(id=41, action="request.created", data={"state": "received", "suppress": False}),
        AuditEntry(
            id=57,
            action="request.verified",
            data={"verification": {"memories_remaining": 0, "checked_tables": ["a", "b"]}, "note": None},
        ),
        AuditEntry(id=90, action="request.approved", data={"subject": {"email": "f" * 64}}),
    ]
    rows = console.audit_rows(entries)
    assert [row["number"] for row in rows] == [1, 2, 3]
    assert rows[0]["pairs"] == [
        {"key": "state", "value": "received", "title": ""},
        {"key": "suppress", "value": "no", "title": ""},
    ]
    assert {"key": "verification › memories remaining", "value": "0", "title": ""} in rows[1]["pairs"]
    assert {"key": "verification › checked tables", "value": "a, b", "title": ""} in rows[1]["pairs"]
    assert {"key": "note", "value": "—", "title": ""} in rows[1]["pairs"]
    assert rows[2]["pairs"] == [{"key": "subject › email", "value": "ffffffffff…", "title": "f" * 64}]
    assert erasure  # (a request exists so the entries read as a request's)


def test_the_detail_page_shows_key_value_pairs_not_python_dict_text(staff_client):
    memories_add(texts=["x"], user_id="audit-subject", agent_id="bot")
    erasure = request_in_state(user_ids=["audit-subject"], state=State.SCOPED)
    erasure_request_scope(request=erasure, actor="dpo")
    html = staff_client.get(_detail(erasure)).content.decode()
    assert "{&#x27;" not in html and "{'" not in html
    assert '<dt class="k">total</dt><dd>1</dd>' in html
    assert 'title="Entry ' in html and "<td" in html


def test_a_verified_request_keeps_a_readable_breakdown_with_the_pseudonyms_explained(staff_client):
    # given: scoped with memories under two user ids, two agents and a run, then pseudonymised
    memories_add(texts=["a", "b"], user_id="bd-user-1", agent_id="coach", run_id="run-7")
    memories_add(texts=["c"], user_id="bd-user-2", agent_id="support")
    erasure = request_in_state(user_ids=["bd-user-1", "bd-user-2"], state=State.SCOPED)
    erasure = erasure_request_scope(request=erasure, actor="dpo")
    assert erasure.scoped_by_user == {"bd-user-1": 2, "bd-user-2": 1}
    ErasureRequest.objects.filter(pk=erasure.pk).update(state=State.VERIFIED, verified_at=timezone.now())
    erasure.refresh_from_db()
    erasure = erasure_request_pseudonymise(request=erasure, actor="worker")
    # when
    html = staff_client.get(_detail(erasure)).content.decode()
    # then: numbered labels, their keyed pseudonyms, an explanation, the counts, no clear identifier
    assert "bd-user-1" not in html and "coach" not in html and "run-7" not in html
    assert "user id 1" in html and "user id 2" in html and "agent 1" in html and "(no run)" in html
    assert "HMAC-SHA256" in html
    breakdown = console.breakdown(erasure)
    assert sorted(row["count"] for row in breakdown["by_user"]) == [1, 2]
    assert all(len(row["pseudonym"]) == 64 for row in breakdown["by_user"])


# --- approval: exact words, four eyes ------------------------------------------------------------------------


def test_the_approval_page_says_what_is_erased_and_what_a_hold_keeps(staff_client):
    erasure = request_in_state(state=State.SCOPED, scoped_total=215, scoped_held=13)
    html = staff_client.get(f"{_detail(erasure)}approve/").content.decode()
    assert "<strong>202</strong> will be erased, <strong>13</strong> kept under a hold" in html
    assert "215" not in html
    unheld = request_in_state(state=State.SCOPED, scoped_total=7, scoped_held=0, user_ids=["u-7"], email="")
    html = staff_client.get(f"{_detail(unheld)}approve/").content.decode()
    assert "<strong>7</strong> will be erased, none kept under a hold" in html


def test_the_badge_says_erasing_while_the_workers_run(staff_client):
    erasure = request_in_state(state=State.SCOPED, approved_at=timezone.now(), scoped_total=4)
    html = staff_client.get(_detail(erasure)).content.decode()
    assert "approved · erasing" in html and "badge-erasing" in html
    waiting = request_in_state(state=State.SCOPED, user_ids=["w-1"], email="w1@example.test")
    assert "approved · erasing" not in staff_client.get(_detail(waiting)).content.decode()


def test_four_eyes_refuses_an_approval_by_the_one_who_scoped(settings):
    settings.APPROVAL_REQUIRES_SECOND_STAFF = True
    erasure = request_in_state(state=State.SCOPED)
    erasure = erasure_request_scope(request=erasure, actor="dpo")
    with pytest.raises(SecondStaffRequired):
        erasure_request_approve(request=erasure, actor="dpo")
    erasure.refresh_from_db()
    assert erasure.approved_at is None
    erasure = erasure_request_approve(request=erasure, actor="second")
    assert erasure.approved_by == "second" and erasure.scoped_by == "dpo"
    entries = {e.action: e for e in AuditEntry.objects.filter(request=erasure)}
    assert entries["request.scoped"].actor == "dpo"
    assert entries["request.approved"].actor == "second"
    assert entries["request.approved"].data["scoped_by"] == "dpo"
    assert entries["request.approved"].data["four_eyes"] is True


def test_without_four_eyes_the_one_who_scoped_may_approve(settings):
    settings.APPROVAL_REQUIRES_SECOND_STAFF = False
    erasure = erasure_request_scope(request=request_in_state(state=State.SCOPED), actor="dpo")
    assert erasure_request_approve(request=erasure, actor="dpo").approved_at is not None


def test_four_eyes_in_the_api_answers_409_then_a_second_key_approves(settings):
    settings.APPROVAL_REQUIRES_SECOND_STAFF = True
    clients = []
    for name in ("scoper", "approver"):
        _key, raw = api_key_create(name=name, is_staff=True)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {raw}")
        clients.append(client)
    scoper, approver = clients
    erasure = request_in_state(state=State.SCOPED)
    url = f"/api/v1/erasure-requests/{erasure.pk}/"
    assert scoper.post(url + "scope/", format="json").status_code == 200
    # when: the same key approves
    response = scoper.post(url + "approve/", format="json")
    # then
    assert response.status_code == 409
    assert "another team member" in response.json()["error"] and response.json()["state"] == "scoped"
    response = approver.post(url + "approve/", format="json")
    assert response.status_code == 200 and response.json()["approved_by"] == "apikey:approver"


def test_four_eyes_in_the_console_explains_and_a_colleague_approves(settings, staff_client, colleague_client):
    settings.APPROVAL_REQUIRES_SECOND_STAFF = True
    erasure = request_in_state(state=State.SCOPED)
    staff_client.post(f"{_detail(erasure)}scope/")
    page = staff_client.get(f"{_detail(erasure)}approve/").content.decode()
    assert "another member of the privacy team must approve it" in page and "disabled" in page
    response = staff_client.post(f"{_detail(erasure)}approve/", {"confirm": "on"}, follow=True)
    assert "approval needs a second team member" in response.content.decode()
    erasure.refresh_from_db()
    assert erasure.approved_at is None
    colleague_client.post(f"{_detail(erasure)}approve/", {"confirm": "on"})
    erasure.refresh_from_db()
    assert erasure.approved_by == "second" and erasure.scoped_by == "dpo"
