"""Builds the configured policy engine (embedded regopy, the OPA server, or none) behind a decision cache, asked
with user names replaced by relations to the subject."""

from __future__ import annotations

import logging
from pathlib import Path

from adapters.opa_policy import OpaPolicy
from adapters.policy_cache import CachedPolicy
from adapters.rego_policy import RegoPolicy
from adapters.relational_policy import RelationalPolicy
from casestream.settings import Settings
from commands.policy import Policy

log = logging.getLogger(__name__)

# The repo's policies/ folder, resolved from the package like api/app.py resolves the UI folder.
POLICY_DIR = Path(__file__).resolve().parent.parent / "policies"


def policy_dir(settings: Settings) -> Path:
    """The folder of Rego policies in force: settings.policy_dir, else the repo's policies/."""
    return (settings.policy_dir or POLICY_DIR).resolve()


def build_policy(settings: Settings) -> Policy | None:
    """The policy for settings.policy_engine, loaded now: a policy that fails raises PolicyLoadError (file:line).

    `opa` also raises PolicyUnavailable when the server cannot be reached at start. `none` returns None: every
    request is allowed, which only benchmarks may want, so it says so loudly.
    """
    if settings.policy_engine == "none":
        log.warning(
            "POLICY ENGINE IS 'none': EVERY COMMAND AND QUERY IS ALLOWED FOR ANY AUTHENTICATED USER. "
            "Use it for benchmarks only; set CASESTREAM_POLICY_ENGINE=embedded or opa."
        )
        return None
    folder = policy_dir(settings)
    engine: Policy
    if settings.policy_engine == "opa":
        engine = OpaPolicy(folder, settings.opa_url, settings.opa_timeout_seconds)
        log.info("policies from %s loaded into OPA at %s", folder, settings.opa_url)
    else:
        engine = RegoPolicy(folder)
        log.info("policies from %s compiled in-process (regopy)", folder)
    # user names become relations first (adapters/relational_policy.py), so the cache serves every user alike
    return RelationalPolicy(CachedPolicy(engine, settings.policy_cache_seconds))
