"""Tools that check the deployment artifacts (deploy/): helm and kubeconform built from the Go module proxy, the
Kubernetes JSON schemas kubeconform validates against and the Compose specification's schema, all from Go modules
the proxy serves, cached in ~/.cache/casestream (nothing is vendored)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from infra.gobuild import file_lock, go_binary, go_env, go_install
from infra.paths import cache_dir

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
HELM_VERSION = "v4.3.2"
KUBECONFORM_MODULE = "github.com/yannh/kubeconform/cmd/kubeconform"
KUBECONFORM_VERSION = "v0.8.0"
# the Kubernetes release whose OpenAPI document (api/openapi-spec/swagger.json in the k8s.io/kubernetes module)
# the rendered manifests must satisfy
KUBERNETES_VERSION = "v1.37.2"
COMPOSE_GO_MODULE = "github.com/compose-spec/compose-go/v2"
COMPOSE_GO_VERSION = "v2.16.2"
# kubeconform's file naming: {{ .ResourceKind }}{{ .KindSuffix }}.json, e.g. deployment-apps-v1.json
SCHEMA_TEMPLATE = "{{ .ResourceKind }}{{ .KindSuffix }}.json"
# bumped whenever _standalone/_strict change what they write, so cached schemas are made again
SCHEMA_REVISION = 2


def helm() -> Path:
    """The helm binary (`go install helm.sh/helm/v4/cmd/helm@v4.3.2` on first use)."""
    return go_install(HELM_MODULE, HELM_VERSION, cache_dir() / "helm" / HELM_VERSION, "helm")


def kubeconform() -> Path:
    """The kubeconform binary (`go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0` on first use)."""
    return go_install(KUBECONFORM_MODULE, KUBECONFORM_VERSION, cache_dir() / "kubeconform" / KUBECONFORM_VERSION,
                      "kubeconform")


def module_dir(module: str, version: str) -> Path:
    """`go mod download` a module from the proxy into the shared module cache; return its extracted folder."""
    with file_lock(cache_dir() / "go" / ".download.lock"):
        done = subprocess.run([go_binary(), "mod", "download", "-json", f"{module}@{version}"], env=go_env(),
                              cwd=cache_dir(), capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"go mod download {module}@{version} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return Path(json.loads(done.stdout)["Dir"])


def compose_schema() -> Path:
    """The Compose specification's JSON schema, as the compose-go module ships it."""
    return module_dir(COMPOSE_GO_MODULE, COMPOSE_GO_VERSION) / "schema" / "compose-spec.json"


def kubernetes_schemas() -> Path:
    """A folder of kubeconform-style strict JSON schemas, one per kind, made from the Kubernetes release's OpenAPI
    document (generated once per version)."""
    target = cache_dir() / "kubernetes-schemas" / f"{KUBERNETES_VERSION}-r{SCHEMA_REVISION}"
    done = target / ".complete"
    if done.exists():
        return target
    swagger = json.loads((module_dir("k8s.io/kubernetes", KUBERNETES_VERSION)
                          / "api" / "openapi-spec" / "swagger.json").read_text())
    definitions: dict[str, Any] = swagger["definitions"]
    with file_lock(target.parent / ".generate.lock"):
        if done.exists():
            return target
        target.mkdir(parents=True, exist_ok=True)
        for name, schema in definitions.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", []):
                group = gvk["group"].split(".")[0]
                suffix = f"-{group}-{gvk['version']}" if group else f"-{gvk['version']}"
                standalone = _standalone(name, definitions)
                (target / f"{gvk['kind'].lower()}{suffix}.json").write_text(json.dumps(standalone))
        done.write_text(KUBERNETES_VERSION)
    return target


def _standalone(name: str, definitions: dict[str, Any]) -> dict[str, Any]:
    """The definition with every definition it references (transitively) beside it, strict: no unknown fields."""
    needed: set[str] = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current in needed:
            continue
        needed.add(current)
        pending.extend(re.findall(r'"#/definitions/([^"]+)"', json.dumps(definitions[current])))
    closure = {key: _strict(key, definitions[key]) for key in needed}
    return {"$schema": "http://json-schema.org/draft-04/schema#", **closure[name], "definitions": closure}


def _strict(name: str, schema: Any) -> Any:
    """OpenAPI quirks made JSON Schema: int-or-string and quantities take both; objects refuse unknown fields."""
    if name.endswith("intstr.IntOrString") or name.endswith("api.resource.Quantity"):
        return {"anyOf": [{"type": "string"}, {"type": "number"}]}
    if isinstance(schema, dict):
        copied = {key: _strict("", value) for key, value in schema.items()}
        if "properties" in copied and "additionalProperties" not in copied:
            copied["additionalProperties"] = False
        if copied.get("format") == "int-or-string":
            copied.pop("type", None)
            copied["anyOf"] = [{"type": "string"}, {"type": "integer"}]
        return copied
    if isinstance(schema, list):
        return [_strict("", item) for item in schema]
    return schema
