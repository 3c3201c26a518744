"""CaseDefinition: a versioned description of a kind of case (schema, stages, queues, card fields)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar
from uuid import UUID

from domain.aggregate import Aggregate, applies
from domain.document import DocumentLimits
from domain.errors import AlreadyExists, FieldError, NotFound, ValidationFailed
from domain.events import EVENT_TYPES, Context, Event, Upcaster
from domain.mail_config import MailSettings
from domain.schema import check_schema
from processes.feel import FeelError, compile_feel

NAMESPACE = uuid.UUID("6c1f3b1e-8d7e-4f55-9a57-3d1c2b7c0a10")
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,39}$")
# a BPMN process id (Zeebe's rule: an XML NCName), the message name of a correlation
PROCESS_ID_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$")
MESSAGE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
# what an automation rule may do when its event arrives (the process manager turns each into a command)
AUTOMATION_ACTIONS = ("correlate-message", "set-queue", "move-stage", "assign", "start-process")
MAX_AUTOMATION_RULES = 50


def key_problem(key: str, field_name: str) -> FieldError | None:
    """A FieldError when key is not a lowercase slug, else None."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        return FieldError(field_name, "must be 2-40 characters of a-z, 0-9 and '-', starting with a letter")
    return None


@lru_cache(maxsize=4096)
def definition_id(tenant: str, key: str) -> UUID:
    """Definitions are keyed per tenant, so their ids are derived, not random."""
    return uuid.uuid5(NAMESPACE, f"definition:{tenant}:{key}")


@dataclass(frozen=True)
class Stage:
    """A stage of a case and the stages it may move to."""

    key: str
    name: str
    transitions: tuple[str, ...] = ()


@dataclass(frozen=True)
class AutomationRule:
    """On an event of type `on` (and when the FEEL condition `when` holds), do `action` with `value`.

    Actions: `correlate-message` (value: message name; correlation key = the case id), `set-queue` (a queue of
    the definition), `move-stage` (a stage), `assign` (a user id), `start-process` (a process id).
    """

    on: str
    action: str
    value: str
    when: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"on": self.on, "action": self.action, "value": self.value, "when": self.when}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> AutomationRule:
        return cls(raw["on"], raw["action"], raw["value"], raw.get("when") or "")


class ProcessCatalog:
    """Process ids the running engine has deployed; publishing refuses others once any is known.

    Filled by the process engine at deploy time. While it is empty (processes switched off, or a tool that
    does not run an engine) process ids are only checked for shape, because the engine may deploy later.
    """

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def add(self, process_id: str) -> None:
        self._ids.add(process_id)

    def known(self) -> frozenset[str]:
        return frozenset(self._ids)


DEPLOYED_PROCESSES = ProcessCatalog()

MAX_ACCESS_NAMES = 50  # groups per list, commands restricted, roles per command
MAX_ACCESS_NAME = 100
COMMAND_NAME_PATTERN = re.compile(r"^[A-Z][A-Za-z]{1,59}$")


@dataclass(frozen=True)
class DefinitionAccess:
    """A definition's own access rules, applied by the policy on top of the base rules (docs/authorization.md).

    read_groups: when not empty, only members of one of them see or change its cases; write_groups: when not
    empty, only members send commands to its cases; restrict: a command type allowed only to the listed roles.
    """

    read_groups: tuple[str, ...] = ()
    write_groups: tuple[str, ...] = ()
    restrict: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The rules as the policy's `access` object: only the keys that say something ({} when none)."""
        rules: dict[str, Any] = {}
        if self.read_groups:
            rules["read_groups"] = list(self.read_groups)
        if self.write_groups:
            rules["write_groups"] = list(self.write_groups)
        if self.restrict:
            rules["restrict"] = {command: list(roles) for command, roles in self.restrict.items()}
        return rules

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> DefinitionAccess:
        raw = raw or {}
        return cls(
            read_groups=tuple(raw.get("read_groups") or ()),
            write_groups=tuple(raw.get("write_groups") or ()),
            restrict={command: tuple(roles) for command, roles in (raw.get("restrict") or {}).items()},
        )

    def problems(self) -> list[FieldError]:
        """What is wrong with the rules' shape, each naming its field (command names are checked by the
        command message, which knows them)."""
        errors: list[FieldError] = []

        def names(values: tuple[str, ...], path: str, *, required: bool) -> None:
            if len(values) > MAX_ACCESS_NAMES:
                errors.append(FieldError(path, f"at most {MAX_ACCESS_NAMES} names"))
            if required and not values:
                errors.append(FieldError(path, "must name at least one role"))
            for i, value in enumerate(values):
                if not isinstance(value, str) or not value.strip() or len(value) > MAX_ACCESS_NAME:
                    errors.append(FieldError(f"{path}[{i}]", f"must be a non-empty name of at most "
                                                            f"{MAX_ACCESS_NAME} characters"))

        names(self.read_groups, "access.read_groups", required=False)
        names(self.write_groups, "access.write_groups", required=False)
        if len(self.restrict) > MAX_ACCESS_NAMES:
            errors.append(FieldError("access.restrict", f"at most {MAX_ACCESS_NAMES} commands"))
        for command, roles in self.restrict.items():
            if not isinstance(command, str) or not COMMAND_NAME_PATTERN.match(command):
                errors.append(FieldError(f"access.restrict.{command}", "must be a command type name"))
            names(roles, f"access.restrict.{command}", required=True)
        return errors


@dataclass(frozen=True)
class DefinitionSpec:
    """One version of a case definition's content."""

    key: str
    name: str
    schema: dict[str, Any]
    stages: tuple[Stage, ...]
    ui_schema: dict[str, Any] = field(default_factory=dict)
    statuses: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    card_fields: tuple[str, ...] = ()
    number_prefix: str = ""
    lifecycle_process: str | None = None
    stage_processes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    automation: tuple[AutomationRule, ...] = ()
    access: DefinitionAccess = field(default_factory=DefinitionAccess)
    documents: DocumentLimits = field(default_factory=DocumentLimits)
    mail: MailSettings = field(default_factory=MailSettings)  # its mailbox and e-mail templates (docs/email.md)

    @property
    def initial_stage(self) -> str:
        return self.stages[0].key

    @property
    def prefix(self) -> str:
        return self.number_prefix or self.key.upper().replace("-", "")

    def stage(self, key: str) -> Stage | None:
        return next((s for s in self.stages if s.key == key), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "schema": self.schema,
            "ui_schema": self.ui_schema,
            "stages": [{"key": s.key, "name": s.name, "transitions": list(s.transitions)} for s in self.stages],
            "statuses": list(self.statuses),
            "queues": list(self.queues),
            "card_fields": list(self.card_fields),
            "number_prefix": self.number_prefix,
            "lifecycle_process": self.lifecycle_process,
            "stage_processes": {stage: list(ids) for stage, ids in self.stage_processes.items()},
            "automation": [rule.to_dict() for rule in self.automation],
            "access": self.access.to_dict(),
            # only when set: specs without document limits keep the shape they had before they existed
            **({"documents": limits} if (limits := self.documents.to_dict()) else {}),
            **({"mail": mail} if (mail := self.mail.to_dict()) else {}),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DefinitionSpec:
        return cls(
            key=raw["key"],
            name=raw["name"],
            schema=raw["schema"],
            ui_schema=raw.get("ui_schema") or {},
            stages=tuple(
                Stage(s["key"], s.get("name") or s["key"], tuple(s.get("transitions") or ()))
                for s in raw["stages"]
            ),
            statuses=tuple(raw.get("statuses") or ()),
            queues=tuple(raw.get("queues") or ()),
            card_fields=tuple(raw.get("card_fields") or ()),
            number_prefix=raw.get("number_prefix") or "",
            lifecycle_process=raw.get("lifecycle_process") or None,
            stage_processes={k: tuple(v) for k, v in (raw.get("stage_processes") or {}).items()},
            automation=tuple(AutomationRule.from_dict(r) for r in raw.get("automation") or ()),
            access=DefinitionAccess.from_dict(raw.get("access")),
            documents=DocumentLimits.from_dict(raw.get("documents")),
            mail=MailSettings.from_dict(raw.get("mail")),
        )

    def check(self, known_processes: frozenset[str] = frozenset()) -> None:
        """Refuse a spec whose parts do not fit together, naming each bad field.

        known_processes, when not empty, is every deployed process id: a process the spec names must be one.
        """
        errors: list[FieldError] = []
        if problem := key_problem(self.key, "key"):
            errors.append(problem)
        if not self.name.strip():
            errors.append(FieldError("name", "must not be empty"))
        if self.number_prefix and not re.fullmatch(r"[A-Z][A-Z0-9]{0,11}", self.number_prefix):
            errors.append(FieldError("number_prefix", "must be 1-12 upper-case letters or digits"))
        if not self.stages:
            errors.append(FieldError("stages", "at least one stage is required"))
        keys = [s.key for s in self.stages]
        for i, stage in enumerate(self.stages):
            if problem := key_problem(stage.key, f"stages[{i}].key"):
                errors.append(problem)
            if keys.count(stage.key) > 1:
                errors.append(FieldError(f"stages[{i}].key", f"duplicate stage {stage.key!r}"))
            for j, target in enumerate(stage.transitions):
                if target not in keys:
                    errors.append(FieldError(f"stages[{i}].transitions[{j}]", f"unknown stage {target!r}"))
        for i, queue in enumerate(self.queues):
            if problem := key_problem(queue, f"queues[{i}]"):
                errors.append(problem)
        errors.extend(self._process_problems(keys, known_processes))
        errors.extend(self.access.problems())
        errors.extend(self.documents.problems())
        errors.extend(self.mail.problems())
        if errors:
            raise ValidationFailed("case definition is not valid", errors)
        check_schema(self.schema, "schema")

    def _process_problems(self, stages: list[str], known: frozenset[str]) -> list[FieldError]:
        """Lifecycle and per-stage process ids, and automation rules (event, action target, FEEL condition)."""
        errors: list[FieldError] = []

        def process(process_id: object, path: str) -> None:
            if not isinstance(process_id, str) or not PROCESS_ID_PATTERN.match(process_id):
                errors.append(FieldError(path, "must be a BPMN process id (a letter or '_', then letters, digits, "
                                               "'_', '-', '.')"))
            elif known and process_id not in known:
                errors.append(FieldError(path, f"no deployed process {process_id!r}"))

        if self.lifecycle_process is not None:
            process(self.lifecycle_process, "lifecycle_process")
        for stage, ids in self.stage_processes.items():
            if stage not in stages:
                errors.append(FieldError(f"stage_processes.{stage}", f"unknown stage {stage!r}"))
            for j, process_id in enumerate(ids):
                process(process_id, f"stage_processes.{stage}[{j}]")
        if len(self.automation) > MAX_AUTOMATION_RULES:
            errors.append(FieldError("automation", f"at most {MAX_AUTOMATION_RULES} rules"))
        for i, rule in enumerate(self.automation):
            errors.extend(self._rule_problems(rule, f"automation[{i}]", stages))
            if rule.action == "start-process":
                process(rule.value, f"automation[{i}].value")
        return errors

    def _rule_problems(self, rule: AutomationRule, path: str, stages: list[str]) -> list[FieldError]:
        errors: list[FieldError] = []
        if rule.on not in EVENT_TYPES:
            errors.append(FieldError(f"{path}.on", f"unknown event type {rule.on!r}"))
        if rule.action not in AUTOMATION_ACTIONS:
            errors.append(FieldError(f"{path}.action", f"must be one of {', '.join(AUTOMATION_ACTIONS)}"))
        elif rule.action == "set-queue" and rule.value not in self.queues:
            errors.append(FieldError(f"{path}.value", f"unknown queue {rule.value!r} (not in this definition)"))
        elif rule.action == "move-stage" and rule.value not in stages:
            errors.append(FieldError(f"{path}.value", f"unknown stage {rule.value!r}"))
        elif rule.action == "correlate-message" and not MESSAGE_PATTERN.match(rule.value):
            errors.append(FieldError(f"{path}.value", "must be a message name (1-100 of A-Z a-z 0-9 _ . : -)"))
        elif rule.action == "assign" and not rule.value.strip():
            errors.append(FieldError(f"{path}.value", "must name a user"))
        if rule.when:
            if not rule.when.lstrip().startswith("="):
                errors.append(FieldError(f"{path}.when", "must be a FEEL expression starting with '='"))
            else:
                try:
                    compile_feel(rule.when)
                except FeelError as exc:
                    errors.append(FieldError(f"{path}.when", f"not valid FEEL: {exc}"))
        return errors


def _spec_with_processes(state: dict[str, Any]) -> dict[str, Any]:
    """Version 1 specs predate processes: add the empty lifecycle, stage-process and automation fields."""
    spec = {"lifecycle_process": None, "stage_processes": {}, "automation": [], **state["spec"]}
    return {**state, "spec": spec}


def _spec_with_access(state: dict[str, Any]) -> dict[str, Any]:
    """Version 2 specs predate per-definition access rules: none ({})."""
    return {**state, "spec": {"access": {}, **state["spec"]}}


class DefinitionPublished(Event):
    """A new version of a case definition was published (the first one creates the definition).

    Version 2: the spec carries `lifecycle_process`, `stage_processes` and `automation`.
    Version 3: the spec carries `access`, the definition's own access rules ({} when none).
    """

    class_version = 3
    upcasters: ClassVar[dict[int, Upcaster]] = {1: _spec_with_processes, 2: _spec_with_access}

    definition_version: int
    spec: dict[str, Any]


class CaseDefinition(Aggregate):
    """A versioned case definition; cases pin the version they were opened under."""

    def __init__(self, aggregate_id: UUID) -> None:
        super().__init__(aggregate_id)
        self.key = ""
        self.specs: list[DefinitionSpec] = []

    @property
    def latest(self) -> DefinitionSpec:
        return self.specs[-1]

    @property
    def latest_version(self) -> int:
        return len(self.specs)

    def spec(self, version: int) -> DefinitionSpec:
        if not 1 <= version <= len(self.specs):
            raise NotFound(f"case definition {self.key!r} has no version {version}")
        return self.specs[version - 1]

    @classmethod
    def create(
        cls, ctx: Context, spec: DefinitionSpec, known_processes: frozenset[str] = frozenset()
    ) -> CaseDefinition:
        spec.check(known_processes)
        definition = cls(definition_id(ctx.tenant, spec.key))
        definition.record(ctx, DefinitionPublished, definition_version=1, spec=spec.to_dict())
        return definition

    def publish(self, ctx: Context, spec: DefinitionSpec, known_processes: frozenset[str] = frozenset()) -> None:
        """Publish a revised version; the key cannot change."""
        spec.check(known_processes)
        if spec.key != self.key:
            raise ValidationFailed("key cannot change", [FieldError("key", f"must stay {self.key!r}")])
        if spec == self.latest:
            raise AlreadyExists(f"case definition {self.key!r} version {self.latest_version} is identical")
        self.record(ctx, DefinitionPublished, definition_version=self.latest_version + 1, spec=spec.to_dict())

    @applies(DefinitionPublished)
    def _published(self, event: DefinitionPublished) -> None:
        spec = DefinitionSpec.from_dict(event.spec)
        self.key = spec.key
        self.specs.append(spec)
