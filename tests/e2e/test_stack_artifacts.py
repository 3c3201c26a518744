"""The deployment artifacts in deploy/ checked as far as this machine can: the Compose file against the Compose
specification's schema (compose-go), the Helm chart with `helm lint` and its rendered manifests with kubeconform
against strict schemas made from the Kubernetes release's OpenAPI document, the Dockerfile's shape. Nothing here is
built or run in a container (no Docker daemon or cluster on this machine)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from infra import deploy_tools

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "casestream"
# licences: these servers are never shipped or run; their open clients are fine
FORBIDDEN_IMAGES = re.compile(r"(^|/)(mongo|minio|zeebe|camunda)[^/]*(:|$)", re.IGNORECASE)
VALUE_SETS: dict[str, list[str]] = {
    "defaults": [],
    "everything on": ["--set", "notify.enabled=true", "--set", "processWorker.enabled=true", "--set",
                      "demo.enabled=true", "--set", "ingress.enabled=true", "--set", "ingress.className=nginx"],
    "fixed replicas, built-in issuer": ["--set", "api.autoscaling.enabled=false",
                                        "--set", "worker.autoscaling.enabled=false",
                                        "--set", "builtinIssuer.existingSecret=keys", "--set-json", "oidc.issuers={}"],
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(deploy_tools.compose_schema().read_text())
    validator = jsonschema.validators.validator_for(schema)(schema, format_checker=jsonschema.FormatChecker())
    document = compose()
    assert [e.message for e in validator.iter_errors(document)] == []
    document["services"]["api"]["restart_policy"] = "always"  # not a Compose key: the schema must say so
    assert any("restart_policy" in e.message for e in validator.iter_errors(document))


def test_compose_runs_every_role_from_one_image_and_no_forbidden_server() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        assert not FORBIDDEN_IMAGES.search(service.get("image", "")), f"{name} runs {service['image']}"
    roles = {name: s["command"][0] for name, s in services.items() if s.get("image", "").startswith("casestream:")}
    assert roles == {"demo": "demo", "relay": "relay", "worker": "worker", "process-worker": "process-worker",
                     "api": "serve", "notify": "notify"}
    assert {s["build"]["dockerfile"] for n, s in services.items() if n in roles} == {"deploy/Dockerfile"}
    assert "ferretdb" in services["ferretdb"]["image"] and "seaweedfs" in services["s3"]["image"]
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])


def test_dockerfile_is_multi_stage_non_root_and_copies_every_package() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM .+ AS \w+$", text, re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and not users[-1].startswith(("root", "0")), users
    assert 'ENTRYPOINT ["casestream"]' in text
    copied = set(re.findall(r"^COPY (\w+) \1$", text, re.MULTILINE))
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {p.rstrip("*") for p in packages["include"]} <= copied
    for source in re.findall(r"^COPY (?!--from)(\S+) ", text, re.MULTILINE):
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which the repository lacks"


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(deploy_tools.helm()), *args], capture_output=True, text=True, timeout=300,
                          check=False)


def render(extra: list[str]) -> str:
    done = helm("template", "cases", str(CHART), "--namespace", "casestream", *extra)
    assert done.returncode == 0, done.stderr
    return done.stdout


def kubeconform(manifests: str) -> subprocess.CompletedProcess[str]:
    schemas = deploy_tools.kubernetes_schemas()
    return subprocess.run([str(deploy_tools.kubeconform()), "-strict", "-summary", "-output", "text",
                           "-schema-location", f"{schemas}/{deploy_tools.SCHEMA_TEMPLATE}", "-"],
                          input=manifests, capture_output=True, text=True, timeout=300, check=False)


def test_helm_lint_passes() -> None:
    done = helm("lint", "--strict", str(CHART))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", VALUE_SETS, ids=list(VALUE_SETS))
def test_rendered_manifests_are_valid_kubernetes(values: str) -> None:
    manifests = render(VALUE_SETS[values])
    checked = kubeconform(manifests)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert re.search(r"Invalid: 0, Errors: 0, Skipped: 0", checked.stdout), checked.stdout


def test_kubeconform_refuses_an_unknown_field() -> None:
    manifests = render([]).replace("livenessProbe:", "livenesProbe:", 1)
    checked = kubeconform(manifests)
    assert checked.returncode != 0
    assert "livenesProbe" in checked.stdout


def test_chart_probes_resources_and_autoscaling() -> None:
    documents = [d for d in yaml.safe_load_all(render(VALUE_SETS["everything on"])) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {("HorizontalPodAutoscaler", "cases-casestream-api"),
            ("HorizontalPodAutoscaler", "cases-casestream-worker")} <= kinds
    assert ("StatefulSet", "cases-casestream-process-manager") in kinds
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] in ("Deployment", "StatefulSet")}
    assert set(deployments) == {f"cases-casestream-{r}" for r in ("api", "relay", "worker", "notify",
                                                                  "process-worker", "process-manager")}
    for deployment in deployments.values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod["containers"]:
            assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    api = deployments["cases-casestream-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert deployments["cases-casestream-relay"]["spec"]["replicas"] == 1


def test_chart_refuses_more_workers_than_partitions() -> None:
    done = helm("template", "cases", str(CHART), "--set", "worker.autoscaling.maxReplicas=13")
    assert done.returncode != 0
    assert "must not exceed kafka.partitions" in done.stderr
