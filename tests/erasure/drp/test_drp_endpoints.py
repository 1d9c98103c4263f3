"""The DRP 1.0 Covered Business endpoints answered as the specification says: pairing, exercise, status, revoke,
and every validation failure (in the order of section 3.07) as {"code", "message", "fatal"}."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client, override_settings
from nacl.signing import SigningKey

from erasure.drp.models import DrpAgent, DrpRequest
from erasure.drp.services import drp_agent_register
from erasure.models import ErasureRequest, IdentityStatus
from erasure.notices import outbox_deliver
from memories.pseudonyms import pseudonym
from tests.erasure.drp.client import DrpAgentClient

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("business")]
BUSINESS = "ACME_MEMORY"


@pytest.fixture
def business():
    with override_settings(DRP_BUSINESS_ID=BUSINESS):
        yield


def _agent(agent_id: str = "PERMISSION_SLIP", *, trusted: bool = False, pair: bool = True) -> DrpAgentClient:
    agent = DrpAgentClient(Client(), agent_id, BUSINESS)
    drp_agent_register(
        agent_id=agent_id, name="Agent", verify_key=agent.verify_key_b64, trusted=trusted, actor="t"
    )
    if pair:
        assert agent.pair().status_code == 200
    return agent


def _error(response, status: int, fatal: bool | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == str(status) and body["message"]
    if fatal is not None:
        assert body["fatal"] is fatal
    return body


def test_pairing_returns_a_random_token_stored_only_hashed_and_agent_info_checks_it():
    agent = _agent(pair=False)
    # when
    response = agent.pair(slash="/")
    # then
    assert response.status_code == 200
    assert response.json()["agent-id"] == "PERMISSION_SLIP" and len(response.json()["token"]) >= 32
    stored = DrpAgent.objects.get(agent_id="PERMISSION_SLIP")
    assert agent.token not in stored.token_hash and len(stored.token_hash) == 64
    assert agent.agent_info().status_code == 200 and agent.agent_info().json() == {}
    _error(agent.agent_info("OTHER_AGENT"), 403)


def test_pairing_fails_with_403_and_no_body_for_an_unknown_agent_a_bad_signature_or_a_mismatched_agent_id():
    registered = _agent(pair=False)
    stranger = DrpAgentClient(Client(), "STRANGER", BUSINESS)
    assert stranger.pair().status_code == 403 and stranger.pair().content == b""
    forged = registered.sign(registered.claims(), key=SigningKey.generate())
    response = registered.client.post("/v1/agent/PERMISSION_SLIP", forged, content_type="text/plain")
    assert response.status_code == 403 and response.content == b""
    mismatched = {**registered.claims(), "agent-id": "SOMEONE_ELSE"}
    assert registered.pair(mismatched).status_code == 403
    assert not DrpAgent.objects.get(agent_id="PERMISSION_SLIP").token_hash


def test_a_deletion_from_an_untrusted_agent_is_in_progress_until_the_user_confirms_the_email():
    agent = _agent()
    # when: the reference client's liberal shape: 15 minutes, regime voluntary, no agent-request-id/relationships
    response = agent.exercise(
        slash="/", regime="voluntary", email="drp-subject@example.test", email_verified=True, name="Pat Doe"
    )
    # then
    assert response.status_code == 200, response.content
    status = response.json()
    assert status["status"] == "in_progress" and status["reason"] == "need_user_verification"
    assert status["user_verification_url"].endswith(f"/privacy/verify/drp/{status['request_id']}/")
    assert status["received_at"].endswith("+00:00") and status["expected_by"].endswith("+00:00")
    drp = DrpRequest.objects.get(request_id=status["request_id"])
    erasure = drp.erasure
    assert erasure.channel == "drp" and erasure.regulation == "ccpa" and erasure.acknowledged_at
    assert (
        erasure.identity_status == IdentityStatus.PENDING
    )  # an untrusted agent's email_verified is no proof
    # the claims are not kept in clear beside the request: only the e-mail's keyed hash and the claim names
    assert drp.claims_pseudonymised["email"] == pseudonym("drp-subject@example.test")
    assert "Pat Doe" not in str(DrpRequest.objects.filter(pk=drp.pk).values().get())
    # the subject is mailed a link and a code; the status says so
    outbox_deliver()
    assert [m.to for m in mail.outbox] == [["drp-subject@example.test"]]
    assert "confirm" in mail.outbox[0].subject.lower()
    assert agent.status(status["request_id"]).json()["status"] == "in_progress"


def test_a_trusted_agents_verified_email_is_identity_evidence():
    agent = _agent("TRUSTED_AGENT", trusted=True)
    status = agent.exercise(
        email="alice@example.test", email_verified=True, **{"agent-request-id": "a-1"}
    ).json()
    assert status["status"] == "in_progress" and "reason" not in status
    assert status["agent_request_id"] == "a-1"
    erasure = ErasureRequest.objects.get(drp__request_id=status["request_id"])
    assert erasure.identity_status == IdentityStatus.VERIFIED
    assert erasure.identity_verified_by == "subject (drp-trusted-agent)"


@pytest.mark.parametrize("exercise", ["access", "sale:opt_out", "sale:opt-out", "access:categories"])
def test_other_exercises_are_denied_as_not_covered(exercise):
    agent = _agent()
    status = agent.exercise(exercise=exercise, email="x@example.test").json()
    assert status["status"] == "denied" and status["reason"] == "claim_not_covered"
    assert not ErasureRequest.objects.exists()


def test_status_and_revoke_with_and_without_trailing_slash_and_revoke_until_the_erasure_starts():
    agent = _agent()
    request_id = agent.exercise(email="rev@example.test").json()["request_id"]
    assert agent.status(request_id, slash="/").json()["request_id"] == request_id
    # when: the reference client's DELETE, with no Content-Type
    response = agent.revoke(request_id)
    # then
    assert response.status_code == 200 and response.json()["status"] == "revoked"
    assert ErasureRequest.objects.get(drp__request_id=request_id).state == "cancelled"
    assert agent.status(request_id).json()["status"] == "revoked"
    _error(agent.revoke(request_id), 409, fatal=False)


def test_another_agents_request_is_forbidden_and_an_unknown_one_not_found():
    owner = _agent("OWNER")
    other = _agent("OTHER")
    request_id = owner.exercise(email="o@example.test").json()["request_id"]
    _error(other.status(request_id), 403)
    _error(other.revoke(request_id), 403)
    _error(owner.status("00000000-0000-0000-0000-000000000000"), 404)
    _error(owner.status("not-a-uuid"), 404)


def test_every_validation_failure_is_answered_as_the_spec_says_and_creates_nothing():
    agent = _agent()
    now = datetime.now(UTC)
    # no bearer token / an unknown one
    _error(
        Client().post("/v1/data-rights-request", agent.sign(agent.claims()), content_type="text/plain"), 401
    )
    stranger = DrpAgentClient(Client(), "PERMISSION_SLIP", BUSINESS)
    stranger.token = "not-a-token"
    _error(stranger.exercise(email="a@example.test"), 403)
    # 1. not base64
    _error(agent.exercise(raw="%%% not base64 %%%"), 400)
    # 2. a signature by another key
    forged = agent.sign(
        {**agent.claims(), "exercise": "deletion", "email": "a@example.test"}, SigningKey.generate()
    )
    _error(agent.exercise(raw=forged), 403)
    # 3. agent-id of another agent
    _error(agent.exercise(**{"agent-id": "SOMEONE_ELSE"}, email="a@example.test"), 403)
    # 4. another business
    _error(agent.exercise(**{"business-id": "OTHER_BUSINESS"}, email="a@example.test"), 403, fatal=True)
    # 5. issued in the future
    future = agent.claims(issued=now + timedelta(hours=1))
    _error(agent.exercise(**future, email="a@example.test"), 403)
    # 6. expired
    past = agent.claims(issued=now - timedelta(hours=1))
    _error(agent.exercise(**past, email="a@example.test"), 403, fatal=True)
    assert not ErasureRequest.objects.exists() and not DrpRequest.objects.exists()


def test_staff_register_agents_through_the_api_and_the_command(staff_api):
    key = DrpAgentClient(Client(), "X", BUSINESS).verify_key_b64
    response = staff_api.post(
        "/api/v1/drp/agents/", {"agent_id": "API_AGENT", "name": "Agent", "verify_key": key}, format="json"
    )
    assert response.status_code == 201 and response.json()["trusted"] is False
    bad = staff_api.post(
        "/api/v1/drp/agents/", {"agent_id": "B", "name": "B", "verify_key": "xyz"}, format="json"
    )
    assert bad.status_code == 400 and "verify_key" in bad.json()
    call_command(
        "drp_add_agent", "--agent-id", "CMD_AGENT", "--name", "Cmd", "--verify-key", key, "--trusted"
    )
    assert DrpAgent.objects.get(agent_id="CMD_AGENT").trusted


def test_a_user_who_does_not_confirm_in_time_gets_the_request_denied_for_insufficient_verification():
    from django.utils import timezone

    from erasure.drp.services import drp_verifications_expire
    from erasure.identity_models import IdentityChallenge

    agent = _agent()
    waiting = agent.exercise(email="slow@example.test").json()["request_id"]
    fresh = agent.exercise(email="fresh@example.test").json()["request_id"]
    IdentityChallenge.objects.filter(request__drp__request_id=waiting).update(expires_at=timezone.now())
    # when
    assert drp_verifications_expire() == 1
    assert drp_verifications_expire() == 0
    # then
    status = agent.status(waiting).json()
    assert status["status"] == "denied" and status["reason"] == "insuf_verification"
    assert status["expires_at"].endswith("+00:00")
    assert agent.status(fresh).json()["status"] == "in_progress"


def test_the_user_verification_url_takes_the_mailed_code_and_returns_the_user_to_the_agent():
    import re
    from urllib.parse import urlsplit

    agent = _agent()
    status = agent.exercise(email="back@example.test").json()
    path = urlsplit(status["user_verification_url"]).path
    page = Client().get(
        path, {"request_id": status["request_id"], "redirect_to": "https://agent.example/done"}
    )
    assert page.status_code == 200 and b"6-digit code" in page.content
    assert b"https://agent.example/done" in page.content
    outbox_deliver()
    code = re.search(r"^(\d{6})$", mail.outbox[0].body, re.M).group(1)
    erasure = ErasureRequest.objects.get(drp__request_id=status["request_id"])
    done = Client().post(
        "/privacy/verify/",
        {"reference": erasure.reference, "code": code, "redirect_to": "https://agent.example/done"},
    )
    assert done.status_code == 302 and done["Location"] == "https://agent.example/done"
    assert agent.status(status["request_id"]).json().get("reason") is None  # no longer needs verification
    assert Client().get("/privacy/verify/drp/00000000-0000-0000-0000-000000000000/").status_code == 404
