"""OpaPolicy: the Rego policies evaluated by the OPA server through opa-python-client, for the distributed mode."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from opa_client import OpaClient
from opa_client.errors import ConnectionsError, RegoParseError

from adapters.policy_files import (
    DECISION_PACKAGE,
    DECISION_RULE,
    START_PROBES,
    PackageModule,
    PolicyLoadError,
    load_policy_files,
    package_modules,
)
from commands.policy import Decision
from domain.errors import PolicyUnavailable

# Policy ids on the server are the package paths; modules of our packages under other ids (an older upload, a
# folder loaded from disk) are removed so that OPA evaluates exactly our files.
_OUR_PACKAGE_ROOT = DECISION_PACKAGE.split(".")[0]


class OpaPolicy:
    """Uploads the policy folder to the OPA server at start, then asks it for every decision (one pooled session)."""

    def __init__(self, policy_dir: Path, url: str, timeout_seconds: float) -> None:
        parts = urlsplit(url)
        self._client = OpaClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            timeout=timeout_seconds,
            # one retry on a refused connection or a 5xx, then PolicyUnavailable: a decision must stay short
            retries=1,
        )
        self._url = url
        # OPA compiles each uploaded module against those already loaded, and our files name each other's rules:
        # the files of one package go up together as one module (lines mapped back to the files for errors)
        self._modules = package_modules(load_policy_files(policy_dir))
        self.upload()

    def upload(self) -> None:
        """Put the policies on the server, one module per package; a refusal names the file and line."""
        try:
            self._remove_strangers()
            for module in self._modules:
                try:
                    self._client.update_policy_from_string(module.source, _policy_id(module), rego_compat=False)
                except RegoParseError as error:
                    raise _load_error(module, error) from None
            for probe in START_PROBES:
                self._probe(probe)
        except (requests.RequestException, ConnectionsError) as error:
            raise PolicyUnavailable(f"OPA at {self._url} could not be reached to load the policies: {error}") from None

    def decide(self, request: Mapping[str, Any]) -> Decision:
        """POST the request to data.casestream.authz.decision; unreachable, timeout or 5xx raise PolicyUnavailable."""
        try:
            answer = self._client.query_rule(dict(request), DECISION_PACKAGE, DECISION_RULE)
        except requests.RequestException as error:
            raise PolicyUnavailable(f"OPA at {self._url} did not decide: {type(error).__name__}") from None
        if "result" not in answer:
            # the server lost our policies (restarted empty): put them back once and ask again
            self.upload()
            try:
                answer = self._client.query_rule(dict(request), DECISION_PACKAGE, DECISION_RULE)
            except requests.RequestException as error:
                raise PolicyUnavailable(f"OPA at {self._url} did not decide: {type(error).__name__}") from None
        return _decision(answer.get("result"))

    def _probe(self, request: Mapping[str, Any]) -> None:
        # OPA reports conflicting rules only when it evaluates them: evaluate once now, not at the first request
        try:
            self._client.query_rule(dict(request), DECISION_PACKAGE, DECISION_RULE)
        except requests.HTTPError as error:
            if error.response is None or error.response.status_code != 500:
                raise
            detail = error.response.json()
            first = (detail.get("errors") or [detail])[0]
            row = (first.get("location") or {}).get("row")
            module = self._modules[0]
            policy_file, line = module.locate(row) if isinstance(row, int) else (module.starts[0][0], None)
            raise PolicyLoadError(str(policy_file.path), line, str(first.get("message"))) from None

    def close(self) -> None:
        """Release the pooled connections."""
        self._client.close_connection()

    def _remove_strangers(self) -> None:
        ours = {_policy_id(module) for module in self._modules}
        for policy_id, package in _server_modules(self._client):
            if policy_id not in ours and package[:1] == [_OUR_PACKAGE_ROOT]:
                self._client.delete_policy(policy_id)


def _server_modules(client: OpaClient) -> list[tuple[str, list[str]]]:
    """(id, package path without `data`) of every module loaded on the server."""
    modules = []
    for policy_id, info in client.get_policies_info().items():
        # info["path"] is <root_url>/data/<package path joined by slashes>
        package = str(info.get("path", "")).removeprefix(client.root_url).strip("/").split("/")
        modules.append((str(policy_id), package[1:]))
    return modules


def _decision(result: Any) -> Decision:
    """The Decision in OPA's result; undefined or malformed is a denial with a reason."""
    if not isinstance(result, dict) or not isinstance(result.get("allow"), bool):
        return Decision(False, ("the policy gave no decision (undefined)",))
    reasons = result.get("reasons")
    named = tuple(str(reason) for reason in reasons) if isinstance(reasons, list) else ()
    if result["allow"] is True:
        return Decision(True, named)
    return Decision(False, named or ("denied by policy",))


def _policy_id(module: PackageModule) -> str:
    return module.package.replace(".", "/")


def _load_error(module: PackageModule, error: RegoParseError) -> PolicyLoadError:
    """OPA's first error location and message, named by the file and line on disk."""
    for detail in error.errors:
        row = (detail.get("location") or {}).get("row")
        if isinstance(row, int):
            policy_file, line = module.locate(row)
            return PolicyLoadError(str(policy_file.path), line, str(detail.get("message")))
        return PolicyLoadError(str(module.starts[0][0].path), None, str(detail.get("message")))
    return PolicyLoadError(str(module.starts[0][0].path), None, str(error.message))
