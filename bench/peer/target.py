"""A case API to measure, read from a small TOML or JSON file: its base URL, headers and request templates.

    name = "my-case-api"
    base_url = "http://127.0.0.1:8080"
    [headers]
    Authorization = "Bearer ${PEER_TOKEN}"      # ${NAME}: taken from the environment
    [create]
    method = "POST"
    path = "/cases"
    body = '{"title": "Claim {n}", "amount": 1200}'   # a JSON text, or a TOML table / JSON object
    id_field = "id"                            # where the reply names the new case (dotted path)
    [read]
    path = "/cases/{id}"                       # {id}: a case this run created
    [list]
    path = "/cases?limit=50"

Placeholders in paths and bodies: {n} a sequence number, {uuid} a fresh UUID, {id} a case created earlier.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPERATIONS = ("create", "read", "list")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(text: str) -> str:
    """${NAME} replaced by the environment's NAME (a missing one is an error naming it)."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ValueError(f"the target file names ${{{name}}}, which is not set in the environment")
        return os.environ[name]

    return _ENV.sub(value, text)


@dataclass(frozen=True)
class Template:
    """One request: method, path and body with placeholders; rendering is a few str.replace calls."""

    method: str
    path: str
    body: str | None = None
    id_field: str = "id"

    def render(self, n: int, case_id: str = "") -> tuple[str, bytes | None]:
        return self._fill(self.path, n, case_id), (
            None if self.body is None else self._fill(self.body, n, case_id).encode())

    @staticmethod
    def _fill(text: str, n: int, case_id: str) -> str:
        if "{" not in text:
            return text
        if "{n}" in text:
            text = text.replace("{n}", str(n))
        if "{uuid}" in text:
            text = text.replace("{uuid}", str(uuid.uuid4()))
        if "{id}" in text:
            text = text.replace("{id}", case_id)
        return text

    def created_id(self, reply: bytes) -> str | None:
        """The new case's id in a create's reply (id_field, dotted), or None."""
        try:
            value: Any = json.loads(reply)
            for part in self.id_field.split("."):
                value = value[part]
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        return str(value)


@dataclass(frozen=True)
class Target:
    """A case API: where it is, what every request carries, and its create/read/list templates."""

    name: str
    base_url: str
    templates: dict[str, Template]
    headers: dict[str, str] = field(default_factory=dict)
    server_pid: int | None = None  # when known, its CPU per request is printed too


def template_of(raw: dict[str, Any], op: str) -> Template:
    body = raw.get("body")
    if isinstance(body, dict | list):
        body = json.dumps(body)
    method = str(raw.get("method", "POST" if op == "create" else "GET")).upper()
    if "path" not in raw:
        raise ValueError(f"[{op}] needs a path")
    return Template(method, _expand(str(raw["path"])), None if body is None else _expand(str(body)),
                    str(raw.get("id_field", "id")))


def load_target(path: Path) -> Target:
    """The target described by a .toml or .json file (ValueError naming what is missing)."""
    text = path.read_text()
    raw: dict[str, Any] = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    for key in ("name", "base_url", "create"):
        if key not in raw:
            raise ValueError(f"{path}: '{key}' is missing")
    templates = {op: template_of(raw[op], op) for op in OPERATIONS if op in raw}
    headers = {str(k): _expand(str(v)) for k, v in dict(raw.get("headers", {})).items()}
    pid = raw.get("server_pid")
    return Target(str(raw["name"]), str(raw["base_url"]).rstrip("/"), templates, headers,
                  int(pid) if pid is not None else None)
