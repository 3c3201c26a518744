"""A real local HTTP server publishing OIDC discovery documents and JWKS for test realms (keys changeable live)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey


@dataclass
class Realm:
    """One issuer: its published keys and how often its JWKS was fetched."""

    issuer: str
    keys: list[RSAKey | ECKey] = field(default_factory=list)
    jwks_fetches: int = 0

    def sign(self, key: RSAKey | ECKey, alg: str = "RS256", **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "aud": ["casestream", "account"], "sub": "0b6c-uuid", "typ": "Bearer",
            "preferred_username": "alice", "iat": now, "nbf": now, "exp": now + 300,
            "realm_access": {"roles": ["caseworker", "offline_access", "uma_authorization", "default-roles-acme"]},
            "resource_access": {"casestream": {"roles": ["supervisor"]}, "account": {"roles": ["manage-account"]}},
            "groups": ["/claims-team", "/fraud/north"],
        }
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg])


class JwksServer:
    """Serves /<realm>/.well-known/openid-configuration and /<realm>/jwks for its realms."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.realms: dict[str, Realm] = {}

    def realm(self, name: str, *keys: RSAKey | ECKey) -> Realm:
        self.realms[name] = Realm(f"{self.url}/{name}", list(keys))
        return self.realms[name]

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        name, _, rest = path.strip("/").partition("/")
        realm = self.realms.get(name)
        if realm is None:
            return 404, {"error": "no such realm"}
        if rest == ".well-known/openid-configuration":
            return 200, {"issuer": realm.issuer, "jwks_uri": f"{realm.issuer}/jwks"}
        if rest == "jwks":
            realm.jwks_fetches += 1
            public = [k.as_dict(private=False) | {"use": "sig"} for k in realm.keys]
            # what Keycloak also publishes: an encryption key, which must never verify a signature
            encryption = RSAKey.generate_key(2048, parameters={"kid": "enc-key", "use": "enc", "alg": "RSA-OAEP"})
            return 200, {"keys": [*public, encryption.as_dict(private=False)]}
        return 404, {"error": "not found"}


@contextmanager
def jwks_server() -> Iterator[JwksServer]:
    """A JwksServer on a free loopback port for the duration of the block."""
    holder: list[JwksServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = holder[0].answer(self.path)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(JwksServer(httpd.server_address[1]))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
