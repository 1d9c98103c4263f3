"""The admin shows keys, jobs, holds and memories read-only, and never memory text or raw keys."""

import pytest
from django.contrib.auth.models import User

from memories.engine import memories_delete_now
from memories.models import ApiKey, LegalHold, Memory
from memories.services import api_key_create, legal_hold_place, memories_add

SECRET_TEXT = "admin-canary-text about the subject"


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", "root@example.com", "pw-for-tests-only")
    client.force_login(user)
    return client


def test_admin_pages_render_without_memory_text_or_raw_keys(admin_client):
    # given
    (memory,) = memories_add(texts=[SECRET_TEXT], user_id="alice")
    (other,) = memories_add(texts=["to delete"], user_id="alice")
    memories_delete_now(kind="single", scope={"memory_ids": [str(other.id)]}, requested_by="t")
    legal_hold_place(scope={"memory_ids": [str(memory.id)]}, reason="art17_3_e", note="", placed_by="t")
    _key, raw = api_key_create(name="k")

    # when
    pages = {
        path: admin_client.get(path)
        for path in (
            "/admin/memories/memory/",
            f"/admin/memories/memory/{memory.id}/change/",
            "/admin/memories/apikey/",
            f"/admin/memories/apikey/{_key.pk}/change/",
            "/admin/memories/deletionjob/",
            "/admin/memories/legalhold/",
        )
    }

    # then
    for path, response in pages.items():
        assert response.status_code == 200, path
        html = response.content.decode()
        assert "admin-canary-text" not in html, path
        assert raw not in html and raw[10:] not in html, path
    assert str(memory.id) in pages["/admin/memories/memory/"].content.decode()
    assert _key.key_hash in pages[f"/admin/memories/apikey/{_key.pk}/change/"].content.decode()


def test_admin_cannot_add_or_delete_memories_and_keys(admin_client):
    (memory,) = memories_add(texts=["x"], user_id="alice")
    assert admin_client.get("/admin/memories/memory/add/").status_code == 403
    assert admin_client.get("/admin/memories/apikey/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/memories/memory/{memory.id}/delete/", {"post": "yes"}).status_code == 403
    )
    assert Memory.objects.filter(id=memory.id).exists()


def test_admin_actions_revoke_keys_and_lift_holds(admin_client):
    key, _raw = api_key_create(name="k")
    (memory,) = memories_add(texts=["x"], user_id="alice")
    hold = legal_hold_place(
        scope={"memory_ids": [str(memory.id)]}, reason="art17_3_e", note="", placed_by="t"
    )

    admin_client.post("/admin/memories/apikey/", {"action": "revoke", "_selected_action": [key.pk]})
    admin_client.post("/admin/memories/legalhold/", {"action": "lift", "_selected_action": [str(hold.pk)]})

    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    assert LegalHold.objects.get(pk=hold.pk).lifted_at is not None
    assert Memory.objects.get(id=memory.id).legal_hold_id is None


def test_memory_is_not_registered_with_auditlog():
    from auditlog.registry import auditlog

    assert not auditlog.contains(Memory)
