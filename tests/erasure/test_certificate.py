"""The signed deletion certificate: facts, signature round trip, tampering, re-issue, keys, PDF, offline command."""

import copy
import json
import os
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from erasure import signing
from erasure.audit import audit_append, audit_chain_head
from erasure.canonical import canonical_json
from erasure.certificate import (
    CertificateNotAvailable,
    UnknownSigningKey,
    certificate_authenticate,
    certificate_build,
    certificate_check_trusted,
    certificate_is_authentic,
    certificate_pdf,
)
from erasure.signing import SignatureInvalid
from memories.pseudonyms import pseudonym
from tests.erasure.factories import CANARY_EMAIL, CANARY_USER, canary_request

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_key_cache():
    signing.signing_key.cache_clear()
    yield
    signing.signing_key.cache_clear()


def test_certificate_states_the_facts_of_a_verified_request(db):
    request = canary_request()
    audit_append(actor="worker", action="request.verified", request=request, data={"state": "verified"})

    doc = certificate_build(request=request)

    cert = doc["certificate"]
    assert cert["reference"] == request.reference and cert["regulation"]["code"] == "gdpr"
    assert cert["subject_pseudonyms"]["user_ids"] == [pseudonym(CANARY_USER)]
    assert cert["scope_pseudonymised"] == request.scope_pseudonymised
    assert cert["counts"] == {
        "scoped": 6,
        "scoped_held": 1,
        "deleted": 5,
        "held": 1,
        "history_rows_purged": 9,
    }
    assert cert["deleted_ids_digest"]["sha256"] == request.deleted_ids_digest
    assert "ascending" in cert["deleted_ids_digest"]["algorithm"]
    assert cert["timestamps"]["verified_at"] == request.verified_at.isoformat()
    assert cert["timestamps"]["received_at"] == request.received_at.isoformat()
    assert cert["verification"]["memories_remaining"] == 0
    assert cert["verified_audit_entry"]["entry_id"] is not None
    assert cert["residual_windows"]["backups"]["retention_days"] == 30
    assert (
        "WAL" in cert["residual_windows"]["wal"]["statement"]
        or "write-ahead" in cert["residual_windows"]["wal"]["statement"]
    )
    assert cert["issuance"]["audit_chain_head"] == audit_chain_head()
    assert cert["signature_algorithm"] == "Ed25519"
    assert cert["key_id"] == doc["key_id"] == signing.key_id()
    assert doc["public_key"].startswith("-----BEGIN PUBLIC KEY-----")


def test_certificate_never_holds_raw_identifiers_even_before_pseudonymisation(db):
    request = canary_request(state="verified", subject_user_ids=[CANARY_USER], subject_email=CANARY_EMAIL)
    text = json.dumps(certificate_build(request=request))
    assert CANARY_USER not in text and CANARY_EMAIL not in text


@override_settings(BACKUP_RETENTION_DAYS=90, WAL_RETENTION_DAYS=3)
def test_residual_windows_follow_the_settings(db):
    cert = certificate_build(request=canary_request())["certificate"]
    assert cert["residual_windows"]["backups"]["retention_days"] == 90
    assert "90 days" in cert["residual_windows"]["backups"]["statement"]
    assert cert["residual_windows"]["wal"]["retention_days"] == 3


@pytest.mark.parametrize("state", ["received", "scoped", "deleted", "failed", "rejected", "cancelled"])
def test_no_certificate_before_verified(db, state):
    with pytest.raises(CertificateNotAvailable) as exc:
        certificate_build(request=canary_request(state=state))
    assert exc.value.state == state


def test_signature_round_trip(db):
    doc = certificate_build(request=canary_request())
    assert certificate_is_authentic(doc)
    assert certificate_is_authentic(doc, doc["public_key"].encode())
    assert certificate_authenticate(json.loads(json.dumps(doc))) == doc["certificate"]["reference"]


def test_the_signed_bytes_are_the_canonical_json(db):
    doc = certificate_build(request=canary_request())
    public = signing.load_public_key(doc["public_key"])
    signing.signature_check(canonical_json(doc["certificate"]), doc["signature"], public)
    assert canonical_json({"b": 1, "a": "é"}) == b'{"a":"\\u00e9","b":1}'


@pytest.mark.parametrize(
    "tamper",
    [
        lambda d: d["certificate"]["counts"].__setitem__("deleted", 6),
        lambda d: d["certificate"]["subject_pseudonyms"].__setitem__("user_ids", [pseudonym("someone-else")]),
        lambda d: d["certificate"]["timestamps"].__setitem__("verified_at", "2020-01-01T00:00:00+00:00"),
        lambda d: d["certificate"].__setitem__("extra", 1),
        lambda d: d.__setitem__("signature", d["signature"][:-4] + "AAA="),
        lambda d: d.__setitem__("signature", "not base64!"),
    ],
)
def test_a_tampered_certificate_is_invalid(db, tamper):
    doc = certificate_build(request=canary_request())
    forged = copy.deepcopy(doc)
    tamper(forged)
    assert not certificate_is_authentic(forged)


def test_a_certificate_resigned_with_another_key_fails_against_the_published_key(db):
    doc = certificate_build(request=canary_request())
    published = doc["public_key"].encode()
    other = Ed25519PrivateKey.generate()
    forged = copy.deepcopy(doc)
    forged["certificate"]["counts"]["deleted"] = 99
    forged["certificate"]["key_id"] = signing.key_id(other.public_key())
    forged["signature"] = (
        __import__("base64").b64encode(other.sign(canonical_json(forged["certificate"]))).decode()
    )
    forged["public_key"] = signing.public_key_pem(other.public_key())

    assert certificate_is_authentic(forged)  # self-consistent with its own embedded key ...
    with pytest.raises(SignatureInvalid, match="key_id"):
        certificate_authenticate(forged, published)  # ... but not with the issuer's published key


def test_reissue_is_identical_except_issuance_and_signature(db):
    request = canary_request()
    first = certificate_build(request=request)
    audit_append(actor="t", action="certificate.issued", request=request, data={})
    second = certificate_build(request=request)

    strip = lambda d: {k: v for k, v in d["certificate"].items() if k != "issuance"}  # noqa: E731
    assert strip(first) == strip(second)
    assert (
        first["certificate"]["issuance"]["audit_chain_head"]
        != second["certificate"]["issuance"]["audit_chain_head"]
    )


def test_configured_pem_key_is_used(db):
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with override_settings(CERTIFICATE_SIGNING_KEY=pem):
        signing.signing_key.cache_clear()
        doc = certificate_build(request=canary_request())
    assert doc["key_id"] == signing.key_id(key.public_key())


def test_development_key_is_generated_once_with_mode_600(db, tmp_path):
    with override_settings(VAR_DIR=tmp_path, CERTIFICATE_SIGNING_KEY="", CERTIFICATE_SIGNING_KEY_FILE="",
                           CERTIFICATE_SIGNING_KEY_AUTOGENERATE=True):  # fmt: skip
        first = signing.key_id()
        signing.signing_key.cache_clear()
        second = signing.key_id()
    path = tmp_path / "signing-key.pem"
    assert first == second and path.exists()
    assert (path.stat().st_mode & 0o777) == 0o600


def test_no_key_outside_development_is_an_error(db, tmp_path):
    with override_settings(VAR_DIR=tmp_path, CERTIFICATE_SIGNING_KEY="", CERTIFICATE_SIGNING_KEY_FILE="",
                           CERTIFICATE_SIGNING_KEY_AUTOGENERATE=False, DEBUG=False):  # fmt: skip
        with pytest.raises(ImproperlyConfigured):
            signing.signing_key()
    assert not (tmp_path / "signing-key.pem").exists()


def _pdf_text(pdf: bytes) -> bytes:
    """The raw bytes plus every inflated content stream (reportlab compresses page content)."""
    out = [pdf]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        try:
            out.append(zlib.decompress(match.group(1)))
        except zlib.error:
            try:
                import base64

                out.append(zlib.decompress(base64.a85decode(match.group(1).strip(), adobe=True)))
            except Exception:  # noqa: BLE001 - a stream we cannot read just adds nothing
                pass
    return b"\n".join(out)


def test_pdf_is_a_one_page_certificate_with_the_reference(db):
    request = canary_request()

    pdf = certificate_pdf(request=request)

    assert pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type /Page\b(?!s)", pdf)) == 1
    text = _pdf_text(pdf)
    assert request.reference.encode() in text
    assert request.deleted_ids_digest.encode() in text
    assert CANARY_USER.encode() not in text


def _run_verify_offline(*args: str) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL="postgresql://postgres@127.0.0.1:9/no_such_db",  # nothing listens: any DB use would fail
    )
    return subprocess.run(
        [sys.executable, "manage.py", "verify_certificate", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_verify_certificate_command_works_offline(db, tmp_path):
    doc = certificate_build(request=canary_request())
    good = tmp_path / "cert.json"
    good.write_text(json.dumps(doc))
    key = tmp_path / "public.pem"
    key.write_text(doc["public_key"])
    tampered = copy.deepcopy(doc)
    tampered["certificate"]["counts"]["held"] = 0
    bad = tmp_path / "tampered.json"
    bad.write_text(json.dumps(tampered))
    other = tmp_path / "other.pem"
    other.write_text(signing.public_key_pem(Ed25519PrivateKey.generate().public_key()))

    ok = _run_verify_offline(str(good), "--public-key", str(key))
    embedded = _run_verify_offline(str(good))
    forged = _run_verify_offline(str(bad))
    wrong_key = _run_verify_offline(str(good), "--public-key", str(other))

    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines()[0] == f"certificate valid: {doc['certificate']['reference']}"
    # without --public-key: this installation's configured key (the same dev key here)
    assert embedded.returncode == 0 and "signed by key" in embedded.stdout
    assert forged.returncode == 1 and "does not match" in forged.stderr
    # sound signature, but not by the key the auditor trusts
    assert wrong_key.returncode == 2 and "signature valid but signed by an unknown key" in wrong_key.stderr


def _resigned(doc: dict, other: Ed25519PrivateKey) -> dict:
    """What a forger does: alter the counts, re-sign with a fresh key, embed that key."""
    import base64

    forged = copy.deepcopy(doc)
    forged["certificate"]["counts"]["deleted"] = 99
    forged["certificate"]["key_id"] = forged["key_id"] = signing.key_id(other.public_key())
    forged["signature"] = base64.b64encode(other.sign(canonical_json(forged["certificate"]))).decode()
    forged["public_key"] = signing.public_key_pem(other.public_key())
    return forged


def test_verify_certificate_refuses_a_certificate_resigned_with_another_key(db, tmp_path):
    # given: a genuine certificate, altered and re-signed with a fresh key embedded in it
    doc = certificate_build(request=canary_request())
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(_resigned(doc, Ed25519PrivateKey.generate())))

    # when: checked against the configured service key (default) and against the published key file
    default = _run_verify_offline(str(path))
    published = tmp_path / "published.pem"
    published.write_text(doc["public_key"])
    pinned = _run_verify_offline(str(path), "--public-key", str(published))

    # then: never "valid"
    for result in (default, pinned):
        assert result.returncode == 2, result.stdout
        assert "certificate valid" not in result.stdout
        assert "signature valid but signed by an unknown key" in result.stderr


def test_after_a_key_rotation_old_certificates_still_verify_by_key_id(db, tmp_path):
    # given: a certificate signed with the old key, then the service rotated to a new one
    old_key, new_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()

    def pem(key: Ed25519PrivateKey) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    with override_settings(CERTIFICATE_SIGNING_KEY=pem(old_key)):
        signing.signing_key.cache_clear()
        old_doc = certificate_build(request=canary_request())
    with override_settings(
        CERTIFICATE_SIGNING_KEY=pem(new_key),
        CERTIFICATE_SIGNING_KEY_PREVIOUS=signing.public_key_pem(old_key.public_key()),
    ):
        signing.signing_key.cache_clear()
        new_doc = certificate_build(request=canary_request())
        published = signing.published_keys()
        trusted = signing.trusted_public_keys()

    # then: both keys are published (the current one first) and each certificate verifies by its key id
    assert [k["key_id"] for k in published] == [new_doc["key_id"], old_doc["key_id"]]
    assert [k["current"] for k in published] == [True, False]
    assert certificate_check_trusted(old_doc, trusted) == old_doc["certificate"]["reference"]
    assert certificate_check_trusted(new_doc, trusted) == new_doc["certificate"]["reference"]
    # and the published PEM bundle, given to the offline command, accepts both
    bundle = tmp_path / "keys.pem"
    bundle.write_text("".join(k["public_key"] for k in published))
    for doc in (old_doc, new_doc):
        path = tmp_path / f"{doc['key_id'][:8]}.json"
        path.write_text(json.dumps(doc))
        result = _run_verify_offline(str(path), "--public-key", str(bundle))
        assert result.returncode == 0, result.stderr
    with pytest.raises(UnknownSigningKey):
        certificate_check_trusted(_resigned(old_doc, Ed25519PrivateKey.generate()), trusted)


def test_verify_certificate_command_rejects_non_json(tmp_path):
    from io import StringIO

    from django.core.management import call_command

    path = tmp_path / "x.json"
    path.write_text("not json")
    err = StringIO()
    with pytest.raises(SystemExit) as exc:
        call_command("verify_certificate", str(path), stderr=err)
    assert exc.value.code == 1 and "not JSON" in err.getvalue()
