"""Assignment through the Erasure API: POST /api/v1/erasure-requests/{id}/assign/, the `assigned_to` field and
filter — the console's assignment (tests/erasure/test_console.py) for a team that works through the API."""

import pytest
from django.contrib.auth import get_user_model

from erasure.models import AuditEntry, State
from tests.erasure.factories import request_in_state

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(db):
    return get_user_model().objects.create_user("dana", password="x-long-password-1", is_staff=True)


def _assign(staff_api, request, assignee):
    return staff_api.post(
        f"/api/v1/erasure-requests/{request.id}/assign/", {"assignee": assignee}, format="json"
    )


def test_assigning_shows_in_detail_and_list_and_the_filter_finds_it(staff_api, member):
    # given: two open requests
    mine, other = request_in_state(), request_in_state(state=State.SCOPED)
    # when
    response = _assign(staff_api, mine, "dana")
    # then
    assert response.status_code == 200 and response.json()["assigned_to"] == "dana"
    listed = staff_api.get("/api/v1/erasure-requests/", {"assigned_to": "dana"}).json()["results"]
    assert [row["id"] for row in listed] == [str(mine.id)]
    unassigned = staff_api.get("/api/v1/erasure-requests/", {"assigned_to": "none"}).json()["results"]
    assert [row["id"] for row in unassigned] == [str(other.id)] and unassigned[0]["assigned_to"] is None
    entry = AuditEntry.objects.filter(request=mine, action="request.assigned").get()
    assert entry.data["assigned_to"] == "dana" and entry.data["assigned_before"] is None


def test_unassigning_with_null(staff_api, member):
    request = request_in_state()
    _assign(staff_api, request, "dana")
    response = _assign(staff_api, request, None)
    assert response.status_code == 200 and response.json()["assigned_to"] is None
    entry = AuditEntry.objects.filter(request=request, action="request.assigned").order_by("-id").first()
    assert entry.data == {"state": State.RECEIVED, "assigned_to": None, "assigned_before": "dana"}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"assignee": "nobody"}, "no privacy-team member"),
        ({"assignee": "outsider"}, "active member of the privacy team"),
        ({}, "required"),
        ({"assignee": "dana", "extra": 1}, "unknown"),
    ],
)
def test_bad_assignee_is_400_naming_the_field(staff_api, member, body, why):
    get_user_model().objects.create_user("outsider", password="x-long-password-2", is_staff=False)
    request = request_in_state()
    response = staff_api.post(f"/api/v1/erasure-requests/{request.id}/assign/", body, format="json")
    assert response.status_code == 400
    assert why in str(response.json())
    request.refresh_from_db()
    assert request.assigned_to_id is None


def test_a_closed_request_cannot_be_assigned_409(staff_api, member):
    request = request_in_state(state=State.VERIFIED)
    response = _assign(staff_api, request, "dana")
    assert response.status_code == 409 and response.json()["state"] == State.VERIFIED


def test_only_staff_keys_assign(api, member):
    request = request_in_state()
    assert _assign(api, request, "dana").status_code == 403
