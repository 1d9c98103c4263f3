"""The stores page and the per-store progress of a request, in a real headless Chromium against a live server,
with a real worker and a connected store that is a second live instance of this service."""

import json
import re
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model

from erasure.models import ErasureRequest
from erasure.services import erasure_request_confirm_identity, erasure_request_create
from memories.models import Memory, Store
from memories.services import memories_add
from tests.remote_mem0 import synthetic_user

pytestmark = [pytest.mark.browser, pytest.mark.worker]
TIMEOUT_MS = 20_000


def test_staff_connect_test_and_disable_a_store_and_watch_each_stores_bar(
    live_server, browser, start_worker, remote_mem0
):
    # given: a subject with memories here and in the remote store, a staff account, a worker
    user = synthetic_user()
    memories_add(texts=["likes hiking", "lives near the lake"], user_id=user, agent_id="coach")
    remote_ids = remote_mem0.add(user_id=user, count=6, agent_id="coach")
    get_user_model().objects.create_user("dpo", password="e2e-password-123", is_staff=True)
    worker = start_worker("ui-stores")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    requested: list[str] = []
    page.on("request", lambda req: requested.append(req.url))
    page.goto(f"{live_server.url}/privacy-team/")
    page.get_by_label("Username").fill("dpo")
    page.get_by_label("Password").fill("e2e-password-123")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Erasure requests").wait_for()

    # when: the stores page is opened from the navigation
    page.get_by_role("link", name="Stores").click()
    page.get_by_role("heading", name="Memory stores").wait_for()
    # then: the built-in store is there, and its connection test answers
    page.get_by_role("button", name="Test connection of builtin").click()
    page.get_by_text("Store builtin: connected").wait_for()

    # when: a store is added with a config that names no host, then corrected
    page.get_by_label("Name").fill("vendor")
    page.get_by_label("Kind").select_option("mem0_platform")
    page.get_by_label("Config (JSON)").fill('{"hostname": "x"}')
    page.get_by_label("Secrets (JSON)").fill(json.dumps({"api_key": remote_mem0.api_key}))
    page.get_by_role("button", name="Add store").click()
    # then: the field is marked and named; the secret is not filled back in
    assert page.locator("#id_add-config_error").is_visible()
    assert "config" in page.locator("#id_add-config_error").inner_text()
    assert page.get_by_label("Secrets (JSON)").input_value() == ""
    assert remote_mem0.api_key not in page.content()
    page.get_by_label("Config (JSON)").fill(
        json.dumps({"host": remote_mem0.url, "retries": 1, "backoff": 0.1})
    )
    page.get_by_label("Secrets (JSON)").fill(json.dumps({"api_key": remote_mem0.api_key}))
    page.get_by_role("button", name="Add store").click()
    page.get_by_text("Store vendor added.").wait_for()
    # and its connection test shows the result and time in its row
    page.get_by_role("button", name="Test connection of vendor").click()
    page.get_by_text("Store vendor: connected").wait_for()
    row = page.locator('tr[data-store="vendor"]')
    assert "ok" in row.locator(".last-check").inner_text() and row.locator(".last-check time").count() == 1
    assert remote_mem0.api_key not in page.content()
    # and its edit page never shows the secret
    page.get_by_role("link", name="Edit vendor").click()
    page.get_by_role("heading", name=re.compile("vendor")).first.wait_for()
    assert page.get_by_label("Secrets (JSON)").input_value() == ""
    assert remote_mem0.api_key not in page.content()
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Store vendor saved.").wait_for()
    assert Store.objects.get(name="vendor").has_secrets

    # when: an erasure of the subject is scoped and approved in the console
    erasure, _token = erasure_request_create(regulation="gdpr", user_ids=[user], channel="staff", actor="dpo")
    erasure_request_confirm_identity(request=erasure, actor="dpo", note="checked")
    page.goto(f"{live_server.url}/privacy-team/requests/{erasure.id}/")
    page.get_by_role("button", name="Compute scope").click()
    page.get_by_text("Scope computed.").wait_for()
    assert page.locator(".stat-value").first.inner_text() == "8"  # 2 here + 6 in the connected store
    per_store = page.get_by_role("table", name="Per store").inner_text()
    assert "builtin" in per_store and "vendor" in per_store and "6" in per_store
    page.get_by_role("link", name="Approve erasure…").click()
    page.get_by_label(re.compile("I have checked the scope")).check()
    page.get_by_role("button", name="Approve and erase").click()
    # then: the page follows it to verified, with one full bar per store
    page.locator(".page-head .badge-verified").wait_for(timeout=60_000)
    bars = page.locator("[data-store-progress]")
    assert bars.count() == 2
    assert [bars.nth(i).get_attribute("data-store-progress") for i in range(2)] == ["builtin", "vendor"]
    assert [bars.nth(i).locator("progress").get_attribute("value") for i in range(2)] == ["100", "100"]
    assert "6 of 6" in bars.nth(1).inner_text()
    assert Memory.objects.filter(user_id=user).count() == 0 and remote_mem0.ids(user_id=user) == set()
    assert ErasureRequest.objects.get(id=erasure.id).deleted_count == 2 + len(remote_ids)

    # when: the store is disabled
    page.goto(f"{live_server.url}/privacy-team/stores/")
    page.get_by_role("button", name="Disable vendor").click()
    page.get_by_text("Store vendor disabled").wait_for()
    assert not Store.objects.get(name="vendor").enabled
    assert "disabled" in page.locator('tr[data-store="vendor"]').inner_text()

    local = urlsplit(live_server.url).netloc
    assert all(urlsplit(url).netloc == local for url in requested), "only local resources are loaded"
    assert errors == [], errors
    context.close()
    assert "Traceback" not in worker.log()
