"""Helm and kubeconform built from the Go module proxy into the casestream cache, once (like OPA and Traefik)."""

from __future__ import annotations

from pathlib import Path

from infra.gobuild import go_install
from infra.paths import cache_dir

HELM_MODULE = "helm.sh/helm/v4/cmd/helm"
HELM_VERSION = "v4.3.2"
KUBECONFORM_MODULE = "github.com/yannh/kubeconform/cmd/kubeconform"
KUBECONFORM_VERSION = "v0.8.0"


def helm() -> Path:
    """The helm binary (`go install helm.sh/helm/v4/cmd/helm@v4.3.2` on first use)."""
    return go_install(HELM_MODULE, HELM_VERSION, cache_dir() / "helm" / HELM_VERSION, "helm")


def kubeconform() -> Path:
    """The kubeconform binary (`go install github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0` on first use)."""
    return go_install(KUBECONFORM_MODULE, KUBECONFORM_VERSION, cache_dir() / "kubeconform" / KUBECONFORM_VERSION,
                      "kubeconform")
