"""A Data Rights Protocol 1.0 authorized agent, written from the specification with PyNaCl: it signs messages in
libsodium combined mode (64-byte Ed25519 signature, then the JSON), base64-encodes them, pairs, exercises, reads
the status and revokes; and a local HTTP server that receives the status callbacks."""

import base64
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nacl.signing import SigningKey


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds")


class DrpAgentClient:
    def __init__(self, client: Any, agent_id: str, business_id: str, signing_key: SigningKey | None = None):
        self.client = (
            client  # Django's test Client (or anything with .get/.post/.delete(path, data, content_type))
        )
        self.agent_id = agent_id
        self.business_id = business_id
        self.key = signing_key or SigningKey.generate()
        self.token = ""

    @property
    def verify_key_b64(self) -> str:
        return base64.b64encode(bytes(self.key.verify_key)).decode()

    def claims(self, *, lifetime: timedelta = timedelta(minutes=15), issued: datetime | None = None) -> dict:
        issued = issued or datetime.now(UTC)
        return {
            "agent-id": self.agent_id,
            "business-id": self.business_id,
            "issued-at": iso(issued),
            "expires-at": iso(issued + lifetime),
            "drp.version": "1.0",
        }

    def sign(self, document: dict[str, Any], key: SigningKey | None = None) -> str:
        signed = (key or self.key).sign(json.dumps(document).encode())  # signature + message (combined mode)
        return base64.b64encode(bytes(signed)).decode()

    def _auth(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}

    def pair(self, document: dict[str, Any] | None = None, *, slash: str = "") -> Any:
        body = self.sign(document or self.claims())
        response = self.client.post(f"/v1/agent/{self.agent_id}{slash}", body, content_type="text/plain")
        if response.status_code == 200:
            self.token = response.json()["token"]
        return response

    def agent_info(self, agent_id: str | None = None) -> Any:
        return self.client.get(f"/v1/agent/{agent_id or self.agent_id}", **self._auth())

    def exercise(self, *, slash: str = "", raw: str | None = None, **fields: Any) -> Any:
        document = {**self.claims(), "exercise": "deletion", "regime": "ccpa", **fields}
        body = raw if raw is not None else self.sign(document)
        return self.client.post(
            f"/v1/data-rights-request{slash}", body, content_type="text/plain", **self._auth()
        )

    def status(self, request_id: str, *, slash: str = "") -> Any:
        return self.client.get(f"/v1/data-rights-request/{request_id}{slash}", **self._auth())

    def revoke(self, request_id: str, reason: str = "I changed my mind") -> Any:
        # The reference client sends the signed body without a Content-Type header.
        body = self.sign({"reason": reason})
        return self.client.generic("DELETE", f"/v1/data-rights-request/{request_id}", body, **self._auth())


class CallbackReceiver:
    """A small HTTP server in a thread, recording every status_callback POST (answering `status` codes in turn,
    then 200)."""

    def __init__(self, fail_first: int = 0):
        self.received: list[dict[str, Any]] = []
        self.fail_first = fail_first
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if receiver.fail_first > 0:
                    receiver.fail_first -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/drp/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def statuses(self) -> list[str]:
        return [body["status"] for body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
