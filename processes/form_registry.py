"""The forms an engine knows, by tenant: forms deployed on their own (every version) and those deployed with a process.

A user task links a form with `zeebe:formDefinition formId` and a binding, resolved when the task is created, as
Camunda 8 does: `latest` (the default) takes the newest version of the form deployed for the tenant; `deployment`
the version deployed in the same request as the instance's process version; `versionTag` the newest version whose
form-js `versionTag` matches. The tenant's own forms come first, then the shipped scope's. Filled in log order by
every DeploymentFollower of this process (processes/deployment_follower.py), so a restart rebuilds it.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Final

from domain.process_deployment import SHIPPED

__all__ = ["BINDINGS", "FORMS", "FORM_KEY_PREFIX", "DeployedForms"]

FORM_KEY_PREFIX: Final = "camunda-forms:bpmn:"
BINDINGS: Final = frozenset({"latest", "deployment", "versionTag"})


class DeployedForms:
    """Every form version learned from the log, by tenant and form id, and the forms deployed with each process
    version, by tenant and content hash (the newest deployment of the same XML wins)."""

    def __init__(self) -> None:
        self._with: dict[tuple[str, str], dict[str, Any]] = {}
        self._versions: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def put(self, tenant: str, content_hash: str, forms: Mapping[str, Any]) -> None:
        """The forms deployed with a process version."""
        with self._lock:
            self._with[(tenant, content_hash)] = dict(forms)

    def put_version(self, tenant: str, form_id: str, form: dict[str, Any]) -> None:
        """A new version of a form deployed on its own (learned in log order: the last one put is the latest)."""
        with self._lock:
            self._versions.setdefault((tenant, form_id), []).append(form)

    def form(self, tenant: str, content_hash: str, form_id: str,
             binding: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The form a user task of an instance (its tenant, its version's content hash) links, by the task's
        `zeebe:formDefinition` attributes (`bindingType`, `versionTag`); None when none matches."""
        key = form_id.removeprefix(FORM_KEY_PREFIX)
        kind = str((binding or {}).get("bindingType") or "latest")
        with self._lock:
            for scope in (tenant, SHIPPED):
                found = self._find(scope, content_hash, key, kind, (binding or {}).get("versionTag"))
                if found is not None:
                    return dict(found)
        return None

    def _find(self, scope: str, content_hash: str, key: str, kind: str, tag: Any) -> dict[str, Any] | None:
        deployed_with = self._with.get((scope, content_hash), {}).get(key)
        versions = self._versions.get((scope, key), [])
        if kind == "deployment":
            return deployed_with if isinstance(deployed_with, dict) else None
        if kind == "versionTag":
            return next((f for f in reversed(versions) if tag and f.get("versionTag") == tag), None)
        if versions:
            return versions[-1]
        # a deployment stored before forms were versioned on their own holds its forms only with its process
        return deployed_with if isinstance(deployed_with, dict) else None


FORMS = DeployedForms()  # filled by every DeploymentFollower of this process
