"""A Novu STAND-IN: a small HTTP server that checks each request against Novu's published trigger contract.

No Novu server can run here, so the Novu publisher is tested against this stand-in. It is not Novu: it
sends nothing; it checks and records what a Novu API would receive and answers as Novu does.

The contract checked (Novu API v1, as novu-py 3.19.0 sends it):
- `POST /v1/events/trigger` (other paths: 404; other methods on it: 405);
- header `Authorization: ApiKey <key>`: missing or another key -> 401;
- a JSON object body (not JSON, or not an object -> 400) with
  `name` (non-empty string), `to` (a subscriber id string, a `{"subscriberId": ...}` object, or a non-empty
  list of those), `payload` (object), `transactionId` (non-empty string); optional `actor` (string or
  subscriber object), `tenant` (string or `{"identifier": ...}`), `overrides` (object). A field breaking a
  rule -> 422 naming it. Novu itself treats `payload` and `transactionId` as optional; the stand-in requires
  them because the publisher relies on both (data for the templates, dedupe).
- success -> 201 `{"data": {"acknowledged": true, "status": "processed", "transactionId": ...}}`;
- a `transactionId` seen before is dropped (not recorded again) and answered as Novu's trigger use case
  does: 400 "transactionId property is not unique, please make sure all triggers have a unique transactionId".

`fail_next(n, status=500)` makes the next n requests fail with that status before any check (to test
retries and the dead-letter path). `received` holds every accepted trigger body, in arrival order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRIGGER_PATH = "/v1/events/trigger"
DUPLICATE_MESSAGE = "transactionId property is not unique, please make sure all triggers have a unique transactionId"


def _is_subscriber(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, dict):
        sid = value.get("subscriberId")
        return isinstance(sid, str) and bool(sid.strip())
    return False


def contract_errors(body: Any) -> list[str]:
    """What a trigger body breaks in the contract (empty: it is valid); each message names its field."""
    if not isinstance(body, dict):
        return ["body: must be a JSON object"]
    errors: list[str] = []
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        errors.append("name: must be a non-empty string (the workflow trigger identifier)")
    to = body.get("to")
    if isinstance(to, list):
        if not to or not all(_is_subscriber(item) for item in to):
            errors.append("to: a list must hold at least one subscriber id or {subscriberId} object")
    elif not _is_subscriber(to):
        errors.append("to: must be a subscriber id, a {subscriberId} object, or a list of them")
    if not isinstance(body.get("payload"), dict):
        errors.append("payload: must be an object")
    tid = body.get("transactionId")
    if not isinstance(tid, str) or not tid.strip():
        errors.append("transactionId: must be a non-empty string")
    if "actor" in body and not _is_subscriber(body["actor"]):
        errors.append("actor: must be a subscriber id or a {subscriberId} object")
    tenant = body.get("tenant")
    if "tenant" in body and not (
        (isinstance(tenant, str) and tenant.strip())
        or (isinstance(tenant, dict) and isinstance(tenant.get("identifier"), str) and tenant["identifier"])
    ):
        errors.append("tenant: must be a tenant identifier or a {identifier} object")
    if "overrides" in body and not isinstance(body["overrides"], dict):
        errors.append("overrides: must be an object")
    return errors


class NovuStandIn:
    """The stand-in's state: the API key it accepts, what it received, failures to inject."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.received: list[dict[str, Any]] = []
        self.refused: list[tuple[int, str]] = []  # (status, reason) of every refused request
        self.duplicates: list[str] = []
        self.requests = 0
        self._failures: list[int] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self.url = ""

    def fail_next(self, count: int, status: int = 500) -> None:
        """Answer the next `count` requests with `status` (before any check)."""
        with self._lock:
            self._failures.extend([status] * count)

    def by_transaction(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {body["transactionId"]: body for body in self.received}

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        """One request -> (status, JSON reply)."""
        with self._lock:
            self.requests += 1
            if self._failures:
                status = self._failures.pop(0)
                return self._refuse(status, path, "injected failure")
        if path != TRIGGER_PATH:
            return self._refuse(404, path, f"Cannot {method} {path}")
        if method != "POST":
            return self._refuse(405, path, f"{method} is not allowed on {TRIGGER_PATH}")
        auth = headers.get("authorization", "")
        if auth != f"ApiKey {self.api_key}":
            return self._refuse(401, path, "API Key not found" if not auth.startswith("ApiKey ") else "Unauthorized")
        try:
            body = json.loads(raw)
        except ValueError:
            return self._refuse(400, path, "body: not valid JSON")
        if not isinstance(body, dict):
            return self._refuse(400, path, "body: must be a JSON object")
        errors = contract_errors(body)
        if errors:
            return self._refuse(422, path, "; ".join(errors), errors)
        tid = body["transactionId"]
        with self._lock:
            if tid in self._seen:
                self.duplicates.append(tid)
                return self._refuse(400, path, DUPLICATE_MESSAGE)
            self._seen.add(tid)
            self.received.append(body)
        return 201, {"data": {"acknowledged": True, "status": "processed", "transactionId": tid}}

    def _refuse(
        self, status: int, path: str, message: str, errors: list[str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        self.refused.append((status, message))
        reply: dict[str, Any] = {
            "statusCode": status, "timestamp": datetime.now(UTC).isoformat(), "path": path, "message": message,
        }
        if errors is not None:
            reply["errors"] = {e.split(":", 1)[0]: {"messages": [e]} for e in errors}
        return status, reply


def _handler(standin: NovuStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, reply = standin.handle(self.command, self.path.split("?", 1)[0], headers, raw)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET = do_PUT = do_DELETE = _serve  # http.server's naming

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def novu_standin(api_key: str = "test-novu-key") -> Iterator[NovuStandIn]:
    """Run the Novu stand-in on a free 127.0.0.1 port for the block; `.url` is its base URL."""
    standin = NovuStandIn(api_key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    standin.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield standin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
