"""The OIDC verifier against keys published by a real local HTTP server: what it accepts and what it refuses."""

from __future__ import annotations

import base64
import hmac
import json
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc.jwk import ECKey, RSAKey

from adapters.oidc import OidcVerifier
from adapters.tokens import TokenInvalid
from tests.jwks_server import JwksServer, Realm, jwks_server


def _rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


@pytest.fixture(scope="module")
def server() -> Iterator[JwksServer]:
    with jwks_server() as running:
        yield running


@pytest.fixture()
def acme(server: JwksServer) -> Realm:
    return server.realm("acme", _rsa("acme-1"))


@pytest.fixture()
def globex(server: JwksServer) -> Realm:
    return server.realm("globex", _rsa("globex-1"))


def _verifier(acme: Realm, globex: Realm, **overrides: object) -> OidcVerifier:
    options: dict[str, object] = {
        "audience": "casestream", "role_claims": ["realm_access.roles", "resource_access.{audience}.roles"],
        "group_claim": "groups", "leeway": 30, "max_lifetime": 3600, "jwks_cache_seconds": 300,
        "jwks_refetch_interval": 60,
    }
    options.update(overrides)
    return OidcVerifier({acme.issuer: "acme", globex.issuer: "globex"}, **options)  # type: ignore[arg-type]


def _refused(verifier: OidcVerifier, token: str, reason: str) -> None:
    with pytest.raises(TokenInvalid, match=reason):
        verifier.verify(token)


def test_a_valid_token_names_the_user_the_issuers_tenant_and_the_mapped_roles_and_groups(
        acme: Realm, globex: Realm) -> None:
    actor = _verifier(acme, globex).verify(acme.sign(acme.keys[0], tenant="globex"))
    assert actor.user == "alice"  # preferred_username, not Keycloak's UUID sub
    assert actor.tenant == "acme"  # from the issuer; the token's own tenant claim is ignored
    assert actor.roles == ("caseworker", "supervisor")  # realm + client roles, Keycloak defaults dropped
    assert actor.groups == ("claims-team", "fraud/north")


def test_the_internal_process_role_is_never_taken_from_a_token(acme: Realm, globex: Realm) -> None:
    token = acme.sign(acme.keys[0], realm_access={"roles": ["process", "viewer"]})
    assert _verifier(acme, globex).verify(token).roles == ("viewer", "supervisor")


def test_sub_is_the_user_when_there_is_no_preferred_username(acme: Realm, globex: Realm) -> None:
    assert _verifier(acme, globex).verify(acme.sign(acme.keys[0], preferred_username=None)).user == "0b6c-uuid"


def test_ec_keys_verify_their_own_curve_algorithm(server: JwksServer, globex: Realm) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    realm = server.realm("acme", key)
    assert _verifier(realm, globex).verify(realm.sign(key, alg="ES256")).tenant == "acme"


def test_an_unconfigured_issuer_is_refused_before_any_key_is_fetched(
        server: JwksServer, acme: Realm, globex: Realm) -> None:
    other = server.realm("other", _rsa("other-1"))
    _refused(_verifier(acme, globex), other.sign(other.keys[0]), "issuer .* is not accepted")
    assert other.jwks_fetches == 0


def test_wrong_audience_is_refused(acme: Realm, globex: Realm) -> None:
    _refused(_verifier(acme, globex), acme.sign(acme.keys[0], aud="account"), "audience")


def test_expired_token_is_refused_beyond_the_leeway_only(acme: Realm, globex: Realm) -> None:
    verifier = _verifier(acme, globex)
    now = int(time.time())
    assert verifier.verify(acme.sign(acme.keys[0], iat=now - 100, exp=now - 10)).user == "alice"
    _refused(verifier, acme.sign(acme.keys[0], iat=now - 100, exp=now - 31), "expired")


def test_a_token_not_valid_yet_is_refused(acme: Realm, globex: Realm) -> None:
    _refused(_verifier(acme, globex), acme.sign(acme.keys[0], nbf=int(time.time()) + 120), "not valid yet")


def test_a_token_issued_in_the_future_is_refused(acme: Realm, globex: Realm) -> None:
    now = int(time.time())
    _refused(_verifier(acme, globex), acme.sign(acme.keys[0], iat=now + 120, exp=now + 600), "future")


def test_a_lifetime_above_the_bound_is_refused(acme: Realm, globex: Realm) -> None:
    now = int(time.time())
    _refused(_verifier(acme, globex), acme.sign(acme.keys[0], iat=now, exp=now + 3601), "lifetime")


def test_a_token_without_iat_is_refused(acme: Realm, globex: Realm) -> None:
    _refused(_verifier(acme, globex), acme.sign(acme.keys[0], iat=None), "iat")


def test_a_refresh_or_id_token_is_not_an_access_token(acme: Realm, globex: Realm) -> None:
    _refused(_verifier(acme, globex), acme.sign(acme.keys[0], typ="ID"), "not an access token")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_alg_none_is_refused(acme: Realm, globex: Realm) -> None:
    genuine = acme.sign(acme.keys[0])
    header = _b64(json.dumps({"alg": "none", "kid": "acme-1"}).encode())
    _refused(_verifier(acme, globex), f"{header}.{genuine.split('.')[1]}.", "algorithm 'none'")


def test_hs256_signed_with_the_public_key_is_refused(acme: Realm, globex: Realm) -> None:
    public = acme.keys[0]
    assert isinstance(public, RSAKey)
    pem = public.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    payload = acme.sign(public).split(".")[1]
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': 'acme-1'}).encode())}.{payload}"
    forged = f"{signing_input}.{_b64(hmac.digest(pem, signing_input.encode(), 'sha256'))}"
    _refused(_verifier(acme, globex), forged, "algorithm 'HS256'")


def test_an_algorithm_that_does_not_fit_the_key_type_is_refused(acme: Realm, globex: Realm) -> None:
    ec = ECKey.generate_key("P-256", parameters={"kid": "acme-1"})  # an attacker's key under the real kid
    _refused(_verifier(acme, globex), acme.sign(ec, alg="ES256"), "does not fit key")


def test_a_tampered_payload_fails_the_signature(acme: Realm, globex: Realm) -> None:
    header, _, signature = acme.sign(acme.keys[0]).split(".")
    claims = json.loads(base64.urlsafe_b64decode(acme.sign(acme.keys[0]).split(".")[1] + "=="))
    claims["realm_access"] = {"roles": ["admin"]}
    _refused(_verifier(acme, globex), f"{header}.{_b64(json.dumps(claims).encode())}.{signature}", "rejected")


def test_another_realms_token_is_refused_and_keeps_its_own_tenant(acme: Realm, globex: Realm) -> None:
    verifier = _verifier(acme, globex)
    # signed by acme's key but claiming globex's issuer: globex's keys do not include acme's kid
    _refused(verifier, acme.sign(acme.keys[0], iss=globex.issuer), "key id 'acme-1' is not among")
    assert verifier.verify(globex.sign(globex.keys[0])).tenant == "globex"


def test_a_foreign_key_under_an_unknown_kid_refetches_once_per_interval(acme: Realm, globex: Realm) -> None:
    verifier = _verifier(acme, globex)
    verifier.verify(acme.sign(acme.keys[0]))
    assert acme.jwks_fetches == 1
    attacker = _rsa("forged")
    for n in range(50):
        forged = acme.sign(RSAKey.generate_key(2048, parameters={"kid": f"forged-{n}"})) if n < 3 else \
            acme.sign(attacker)
        _refused(verifier, forged, "is not among the signing keys")
    assert acme.jwks_fetches == 2  # one refetch for the first unknown kid, none for the other 49 in the interval


def test_a_new_key_is_found_by_refetching_on_its_unknown_kid(acme: Realm, globex: Realm) -> None:
    verifier = _verifier(acme, globex)
    verifier.verify(acme.sign(acme.keys[0]))
    fresh = _rsa("acme-2")
    acme.keys.append(fresh)
    assert verifier.verify(acme.sign(fresh)).tenant == "acme"
    assert acme.jwks_fetches == 2


def test_a_rotated_out_key_stops_working_after_the_refetch_even_for_cached_tokens(
        acme: Realm, globex: Realm) -> None:
    verifier = _verifier(acme, globex)
    old_token = acme.sign(acme.keys[0])
    assert verifier.verify(old_token).user == "alice"  # now cached
    fresh = _rsa("acme-2")
    acme.keys[:] = [fresh]  # rotation: the old key is gone from the JWKS
    assert verifier.verify(acme.sign(fresh)).user == "alice"  # its unknown kid refetched the JWKS
    _refused(verifier, old_token, "key id 'acme-1' is not among")


def test_the_jwks_is_fetched_again_when_its_cache_time_is_over(acme: Realm, globex: Realm) -> None:
    verifier = _verifier(acme, globex, jwks_cache_seconds=0.2, jwks_refetch_interval=0)
    old = acme.keys[0]
    verifier.verify(acme.sign(old))
    acme.keys[:] = [_rsa("acme-2")]
    time.sleep(0.3)
    _refused(verifier, acme.sign(old), "key id 'acme-1' is not among")


def test_a_malformed_token_is_refused(acme: Realm, globex: Realm) -> None:
    _refused(_verifier(acme, globex), "not-a-token", "malformed")
