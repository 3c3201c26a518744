"""Which identity the platform trusts: the configured external OIDC issuers, or else the built-in issuer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adapters.issuer import BuiltinIssuer
from adapters.password_login import LoginThrottle, PasswordLogin
from adapters.tokens import TokenVerifier
from adapters.user_directory import UserDirectory
from casestream.settings import Settings


@dataclass
class Identity:
    """The token verifier the API uses; the built-in issuer and its password login only when no issuer is set."""

    verifier: TokenVerifier
    issuer: BuiltinIssuer | None
    login: PasswordLogin | None


def users_path(settings: Settings) -> Path:
    return settings.users_file or settings.data_dir / "users.json"


def build_identity(settings: Settings) -> Identity:
    """External issuers when settings.oidc_issuers names any (the built-in one is then off), else the built-in one."""
    if settings.oidc_issuers:
        from adapters.oidc import OidcVerifier

        return Identity(OidcVerifier.from_settings(settings), None, None)
    issuer = BuiltinIssuer(settings.key_path, settings.base_url, settings.audience, settings.token_ttl_seconds)
    directory = UserDirectory.open_or_create_demo(users_path(settings))
    throttle = LoginThrottle(settings.login_max_failures, settings.login_lockout_seconds)
    return Identity(issuer, issuer, PasswordLogin(directory, throttle, settings.default_tenant))
