"""The legal holds page in a real headless Chromium: a hold shows what it matches and keeps now; lifting it asks
first, says what it releases and what another hold keeps, and only then lifts it."""

import pytest
from django.contrib.auth import get_user_model

from erasure.services import legal_hold_create
from memories.models import LegalHold
from memories.services import memories_add
from tests.e2e.test_ui_browser import TIMEOUT_MS, _shot, _sign_in

pytestmark = [pytest.mark.browser]


def test_lifting_a_hold_in_the_browser_confirms_what_it_releases(live_server, browser):
    # given: two overlapping holds over a subject's memories, one memory written after them
    memories_add(texts=["a", "b"], user_id="ui-hold-subject", agent_id="legal")
    memories_add(texts=["c"], user_id="ui-hold-subject", agent_id="bot")
    wide = legal_hold_create(scope={"user_id": "ui-hold-subject"}, reason="art17_3_e", actor="staff:1")
    legal_hold_create(
        scope={"user_id": "ui-hold-subject", "agent_id": "legal"},
        reason="art17_3_b",
        note="matter 7",
        actor="x",
    )
    memories_add(texts=["d"], user_id="ui-hold-subject", agent_id="bot")
    get_user_model().objects.create_user("dpo", password="e2e-password-123", is_staff=True)
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    _sign_in(page, f"{live_server.url}/privacy-team/holds/")
    page.get_by_role("heading", name="Legal holds").wait_for()
    assert "ui-hold-subject" not in page.content()
    _shot(page, "legal-holds-rules")

    # when: staff follows the wider hold's lift link
    page.locator("tr", has_text="Art. 17(3)(e)").get_by_role("link", name="Lift").click()

    # then: the confirmation says 2 are released (one written after the hold) and 2 stay under the other hold
    page.get_by_role("heading", name="Lift this legal hold?").wait_for()
    assert page.get_by_test_id("matching").inner_text() == "4 memories"
    assert "releases 2 memories" in page.get_by_test_id("releases").inner_text()
    assert LegalHold.objects.get(pk=wide.pk).is_active
    _shot(page, "legal-hold-lift")

    # when: confirmed
    page.get_by_role("button", name="Lift the hold").click()

    # then
    page.get_by_text("Hold lifted: 2 memories can be erased again.").wait_for()
    assert not LegalHold.objects.get(pk=wide.pk).is_active
    context.close()
