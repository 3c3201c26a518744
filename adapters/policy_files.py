"""The Rego policy folder both engines load: its files, the entry point they query, and the load error they raise."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The one rule every engine evaluates (docs/authorization.md): an object {"allow": bool, "reasons": [str]}.
DECISION_PACKAGE = "casestream.authz"
DECISION_RULE = "decision"
DECISION_REF = f"data.{DECISION_PACKAGE}.{DECISION_RULE}"

# Requests every engine evaluates once at start: some errors (conflicting rules) show only when a rule is
# evaluated, and a policy that fails must stop the server at start, not at the first request.
START_PROBES: tuple[Mapping[str, Any], ...] = (
    {},
    {
        "subject": {"user": "probe", "tenant": "probe", "roles": ["admin"], "groups": []},
        "action": "read",
        "resource": {"kind": "definition", "definition_key": "probe", "access": {}},
    },
    {
        "subject": {"user": "probe", "tenant": "probe", "roles": ["caseworker"], "groups": []},
        "action": "AddComment",
        "resource": {"kind": "case", "definition_key": "probe", "stage": "s", "status": "open", "queue": None,
                     "assignee": None, "owner": "probe", "access": {"read_groups": ["g"]}},
    },
)


class PolicyLoadError(Exception):
    """A policy file could not be parsed or compiled; names the file and line so that start-up can say where."""

    def __init__(self, file: str, line: int | None, message: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass(frozen=True)
class PolicyFile:
    """One Rego module: its id (path relative to the folder), where it lies, and its text."""

    id: str
    path: Path
    source: str


def load_policy_files(folder: Path) -> list[PolicyFile]:
    """The folder's *.rego modules (tests excluded: `opa test` runs those), sorted by id; refuses an empty folder."""
    if not folder.is_dir():
        raise PolicyLoadError(str(folder), None, "policy folder does not exist")
    files = [
        PolicyFile(id=path.relative_to(folder).as_posix(), path=path, source=path.read_text(encoding="utf-8"))
        for path in sorted(folder.rglob("*.rego"))
        if not path.name.endswith("_test.rego")
    ]
    if not files:
        raise PolicyLoadError(str(folder), None, "no .rego policy files in the folder")
    return files


def line_at(source: str, byte_offset: int) -> int:
    """1-based line number of a byte offset (regopy counts bytes of the UTF-8 text) in a module's source."""
    return source.encode("utf-8")[: max(0, byte_offset)].count(b"\n") + 1


@dataclass(frozen=True)
class PackageModule:
    """All files of one package joined into one module (one upload, so files may name each other's rules)."""

    package: str
    source: str
    starts: tuple[tuple[PolicyFile, int], ...]  # each file and the module line its first line became

    def locate(self, line: int) -> tuple[PolicyFile, int]:
        """The file and file line that a line of the joined module came from."""
        found = self.starts[0]
        for policy_file, start in self.starts:
            if start <= line:
                found = (policy_file, start)
        return found[0], line - found[1] + 1


def package_of(policy_file: PolicyFile) -> str:
    """The module's package name (its first `package` line)."""
    for raw in policy_file.source.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == "package":
            return words[1]
    raise PolicyLoadError(str(policy_file.path), 1, "no package declaration")


def package_modules(files: list[PolicyFile]) -> list[PackageModule]:
    """One module per package: a `package` line, then each file with its own package line made a comment."""
    grouped: dict[str, list[PolicyFile]] = {}
    for policy_file in files:
        grouped.setdefault(package_of(policy_file), []).append(policy_file)
    modules = []
    for package, members in grouped.items():
        lines = [f"package {package}"]
        starts = []
        for policy_file in members:
            starts.append((policy_file, len(lines) + 1))
            for raw in policy_file.source.splitlines():
                lines.append(f"# {raw}" if raw.split("#", 1)[0].split()[:1] == ["package"] else raw)
        modules.append(PackageModule(package, "\n".join(lines) + "\n", tuple(starts)))
    return modules
