"""The legal holds page: what each hold matches (subject identifiers as pseudonyms) and keeps now, and a lift that
first says what it releases."""

import pytest
from django.contrib.auth import get_user_model

from erasure.services import legal_hold_create
from memories.models import LegalHold, Memory
from memories.pseudonyms import pseudonym
from memories.services import memories_add

SUBJECT = "holds-page-subject-5521"


@pytest.fixture
def staff_client(client, db):
    staff = get_user_model().objects.create_user("dpo", password="pw-for-tests-only", is_staff=True)
    client.force_login(staff)
    return client


def test_the_holds_page_shows_each_holds_criteria_and_what_it_keeps_now(staff_client):
    # given: a hold on the subject's "legal" memories, and one more written after it
    memories_add(texts=["a", "b"], user_id=SUBJECT, agent_id="legal")
    memories_add(texts=["c"], user_id=SUBJECT, agent_id="bot")
    legal_hold_create(scope={"user_id": SUBJECT, "agent_id": "legal"}, reason="art17_3_e", actor="staff:1")
    memories_add(texts=["d"], user_id=SUBJECT, agent_id="legal")

    # when
    html = staff_client.get("/privacy-team/holds/").content.decode()

    # then: the agent in clear, the subject as a pseudonym only, and the 3 memories the hold keeps now
    assert "legal" in html and pseudonym(SUBJECT)[:12] in html and SUBJECT not in html
    assert '<td data-label="Keeps now" class="num">3</td>' in html


def test_lifting_a_hold_first_says_what_it_releases_then_lifts_it(staff_client):
    # given: two overlapping holds
    memories_add(texts=["a", "b"], user_id=SUBJECT, agent_id="legal")
    memories_add(texts=["c", "d", "e"], user_id=SUBJECT, agent_id="bot")
    wide = legal_hold_create(scope={"user_id": SUBJECT}, reason="art17_3_e", actor="staff:1")
    legal_hold_create(scope={"user_id": SUBJECT, "agent_id": "legal"}, reason="art17_3_b", actor="staff:1")

    # when: the lift link is followed
    page = staff_client.get(f"/privacy-team/holds/{wide.pk}/lift/")

    # then: a confirmation saying what is released and what another hold keeps; nothing lifted yet
    html = page.content.decode()
    assert page.status_code == 200 and "Lift the hold" in html
    assert "releases <strong>3 memories</strong>" in html and "2 stay kept by another active hold" in html
    assert LegalHold.objects.get(pk=wide.pk).is_active

    # when: confirmed
    response = staff_client.post(f"/privacy-team/holds/{wide.pk}/lift/", follow=True)

    # then
    assert "Hold lifted: 3 memories can be erased again." in response.content.decode()
    wide.refresh_from_db()
    assert not wide.is_active and wide.scope is None
    assert Memory.objects.filter(legal_hold__isnull=False).count() == 2
