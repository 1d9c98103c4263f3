"""An authorized agent, written from the DRP 1.0 specification with PyNaCl, takes a deletion through the whole
erasure with a real worker: pair, exercise, status, and the status callbacks to a local receiver that is down at
first (none is lost) until `fulfilled`."""

import pytest
from django.test import Client, override_settings

from erasure.drp.models import DrpCallback
from erasure.drp.services import drp_agent_register
from erasure.models import ErasureRequest
from memories.models import Memory
from memories.services import memories_add
from tests.conftest import wait_for
from tests.erasure.drp.client import CallbackReceiver, DrpAgentClient

BUSINESS = "ACME_MEMORY"


@pytest.fixture
def receiver():
    server = CallbackReceiver(fail_first=2)  # the agent is down for the first two deliveries
    yield server
    server.close()


@override_settings(DRP_BUSINESS_ID=BUSINESS)
def test_a_drp_deletion_goes_through_the_erasure_to_fulfilled_with_every_callback_delivered(
    start_worker, staff_api, receiver
):
    # given: memories keyed by the subject's e-mail, a trusted agent paired with us, a worker
    subject = "drp-alice@example.test"
    memories_add(texts=["likes sailing", "lives in Lisbon"], user_id=subject, agent_id="coach")
    memories_add(texts=["bystander"], user_id="someone-else", agent_id="coach")
    agent = DrpAgentClient(Client(), "PERMISSION_SLIP", BUSINESS)
    drp_agent_register(agent_id=agent.agent_id, name="Permission Slip", verify_key=agent.verify_key_b64,
                       trusted=True, actor="test")  # fmt: skip
    assert agent.pair().status_code == 200
    start_worker("drp", extra_env={"DRP_CALLBACK_RETRY_BASE_SECONDS": "0.2", "DRP_BUSINESS_ID": BUSINESS})

    # when: the agent exercises a deletion for its user
    status = agent.exercise(email=subject, email_verified=True, status_callback=receiver.url).json()
    request_id = status["request_id"]
    assert status["status"] == "in_progress" and status["expected_by"].endswith("+00:00")

    # and the privacy team scopes and approves it (the e-mail is the confirmed user id)
    erasure_id = str(ErasureRequest.objects.get(drp__request_id=request_id).id)
    url = f"/api/v1/erasure-requests/{erasure_id}/"
    assert staff_api.get(url).json()["subject"]["user_ids_confirmed"] == [subject]
    scoped = staff_api.post(url + "scope/")
    assert scoped.status_code == 200 and scoped.json()["counts"]["scoped_total"] == 2
    assert staff_api.post(url + "approve/").status_code == 200

    # then: the worker erases, verifies, and the agent hears `fulfilled` despite being down at first
    wait_for(lambda: "fulfilled" in receiver.statuses(), timeout=120, message="the fulfilled callback")
    wait_for(lambda: receiver.statuses()[-1] == "fulfilled", message="fulfilled as the last status received")
    final = receiver.received[-1]
    assert final["request_id"] == request_id and "erased 2 item(s)" in final["processing_details"]
    assert final["expires_at"].endswith("+00:00")
    assert agent.status(request_id).json()["status"] == "fulfilled"
    assert not Memory.objects.filter(user_id=subject).exists()
    assert Memory.objects.filter(user_id="someone-else").exists()
    # one callback per change (approval: "the erasure is running", then fulfilled); the agent was down for two
    # attempts: they were retried, and none is left undelivered (an older one may be superseded by a newer one)
    running, fulfilled = DrpCallback.objects.order_by("id")
    assert running.payload["processing_details"] == "the erasure is running"
    assert fulfilled.status == "sent" and running.status in ("sent", "superseded")
    assert running.attempts + fulfilled.attempts - (running.status == "sent") - 1 == 2
