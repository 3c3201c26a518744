"""Deploying BPMN files, DMN files and forms as events: each file checked on its own, then one command per file.

`deploy_files` is what the deploy endpoint (and through it `casestream process deploy`) runs: each file is checked
on its own with the engine's parser (processes/model.py), so one bad file never affects the others. A form is
deployed on its own as a new version of its id (whether or not a BPMN file of the request names it); each process
that passes becomes one `DeployProcess` command carrying the forms of the same request that it names (what a
`bindingType="deployment"` link takes), after its `zeebe:formDefinition formId` links are checked
(processes/form_links.py). How engines learn what was stored: processes/deployment_follower.py.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Literal

from commands.bus import Actor, CommandBus
from commands.process_deployment import MAX_XML, DeployProcess
from domain.definition import PROCESS_ID_PATTERN
from domain.errors import DomainError, Forbidden, InvalidStateChange
from domain.process_deployment import SHIPPED, ProcessDeployments, deployments_id, xml_hash
from processes.bpmn import BpmnRejected, Problem
from processes.dmn import dmn_definitions, parse_dmn
from processes.form_links import link_problems
from processes.form_registry import FORM_KEY_PREFIX
from processes.forms import FormRejected as CamundaFormRejected
from processes.forms import embedded_forms, form_schema, linked_forms

if TYPE_CHECKING:  # the model imports SpiffWorkflow: loaded on first use, not at import
    from processes.model import ProcessModel

log = logging.getLogger(__name__)
FORM_SUFFIXES = (".form", ".json")
DMN_SUFFIX = ".dmn"
MAX_FORM = 200_000  # characters of one form file
Status = Literal["deployed", "unchanged", "refused"]


@dataclass(frozen=True)
class Resource:
    """One file of a deployment: its name and bytes."""

    filename: str
    data: bytes


@dataclass
class FileOutcome:
    """What became of one file: deployed (a new version), unchanged (the newest version has its content), refused."""

    file: str
    kind: Literal["process", "form", "decisions"]
    status: Status
    process_id: str | None = None
    version: int | None = None
    content_hash: str | None = None
    forms: list[str] = field(default_factory=list)  # a process: the forms deployed with it; a form: its id
    problems: list[Problem] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file, "kind": self.kind, "status": self.status, "process_id": self.process_id,
            "version": self.version, "content_hash": self.content_hash, "forms": self.forms,
            "problems": [{"element_id": p.element_id, "line": p.line, "message": p.message} for p in self.problems],
        }

    def message(self) -> str:
        """The outcome in words: a refusal names the file, each element and line."""
        if self.status != "refused":
            what = f"form {self.process_id} version {self.version}" if self.kind == "form" else (
                f"{self.process_id} version {self.version}")
            return f"{self.file}: {self.status} ({what})"
        return "\n".join(f"{self.file}: {p}" for p in self.problems)


class FormRejected(ValueError):
    """A form file that cannot be deployed."""


class _PreparedModels:
    """Models this process checked, by content hash, so the engine learning their deployment does not parse them
    again (bounded: a model not taken is parsed again, which costs time, nothing else)."""

    def __init__(self, size: int = 64) -> None:
        self._models: OrderedDict[str, ProcessModel] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def put(self, model: ProcessModel) -> None:
        with self._lock:
            self._models[model.content_hash] = model
            while len(self._models) > self._size:
                self._models.popitem(last=False)

    def take(self, content_hash: str) -> ProcessModel | None:
        with self._lock:
            return self._models.pop(content_hash, None)


PREPARED = _PreparedModels()


def is_form(filename: str) -> bool:
    """Whether a file is a form (form-js JSON) rather than BPMN."""
    return filename.lower().endswith(FORM_SUFFIXES)


def is_decisions(filename: str) -> bool:
    """Whether a file is DMN (decisions for business-rule tasks) rather than BPMN."""
    return filename.lower().endswith(DMN_SUFFIX)


def check_decisions(resource: Resource) -> tuple[str, str, list[str]]:
    """Check a DMN file as the engine would evaluate it: its definitions id, name and decision ids; raise
    BpmnRejected naming each decision, rule and line."""
    if len(resource.data) > MAX_XML:
        raise BpmnRejected([Problem(None, f"the file is larger than {MAX_XML} bytes")])
    decisions = parse_dmn(resource.data)
    definitions_id, name = dmn_definitions(resource.data)
    if not definitions_id or not PROCESS_ID_PATTERN.fullmatch(definitions_id):
        raise BpmnRejected([Problem(None, f"the DMN definitions id {definitions_id!r} must match "
                                          f"{PROCESS_ID_PATTERN.pattern}", 1)])
    return definitions_id, name, sorted(decisions)


def check_process(resource: Resource, task_types: frozenset[str] | None = None) -> ProcessModel:
    """Check a BPMN file as the engine would run it; raise BpmnRejected naming each element and line."""
    from processes.jobs import known_task_types
    from processes.model import prepare_model

    if len(resource.data) > MAX_XML:
        raise BpmnRejected([Problem(None, f"the file is larger than {MAX_XML} bytes")])
    try:
        resource.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BpmnRejected([Problem(None, f"the file is not UTF-8 text (byte {exc.start})")]) from None
    model = prepare_model(resource.data, task_types if task_types is not None else known_task_types(),
                          resource.filename)
    _check_embedded_forms(resource.data)
    PREPARED.put(model)
    return model


def _check_embedded_forms(xml: bytes) -> None:
    """Refuse a BPMN file whose embedded `zeebe:userTaskForm` a user task could not be validated with."""
    problems: list[Problem] = []
    for form_id, (line, form) in embedded_forms(xml).items():
        try:
            if isinstance(form, str):
                raise CamundaFormRejected(form)
            form_schema(form)
        except CamundaFormRejected as exc:
            problems.append(Problem(form_id or None, f"zeebe:userTaskForm: {exc}", line))
    if problems:
        raise BpmnRejected(problems)


def read_form(resource: Resource) -> tuple[str, dict[str, Any]]:
    """A form file's id (its `id`, else the file name's stem) and JSON; FormRejected says what is wrong."""
    if len(resource.data) > MAX_FORM:
        raise FormRejected(f"the form is larger than {MAX_FORM} bytes")
    try:
        form = json.loads(resource.data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormRejected(f"the form is not JSON: {exc}") from None
    if not isinstance(form, dict):
        raise FormRejected("the form must be a JSON object (form-js: with `components`)")
    if "components" in form and not isinstance(form["components"], list):
        raise FormRejected("the form's `components` must be a list")
    try:
        form_schema(form)
    except CamundaFormRejected as exc:
        raise FormRejected(str(exc)) from None
    form_id = form.get("id") if isinstance(form.get("id"), str) and form.get("id") else PurePath(resource.filename).stem
    return str(form_id), form


def form_references(model: ProcessModel) -> set[str]:
    """The form ids a model's user tasks name (`zeebe:formDefinition` formId, or a formKey)."""
    found: set[str] = set()
    for ext in model.extensions.values():
        definition = ext.get("formDefinition") or {}
        for key in (definition.get("formId"), definition.get("formKey")):
            if isinstance(key, str) and key:
                found.add(key.removeprefix(FORM_KEY_PREFIX))
    return found


def deploy_files(
    bus: CommandBus, actor: Actor, files: Sequence[Resource], *, task_types: frozenset[str] | None = None,
) -> list[FileOutcome]:
    """Check and deploy each file on its own; an outcome per file, in order. Forbidden (the actor may not deploy)
    is raised, not reported per file."""
    outcomes: list[FileOutcome] = []
    forms: dict[str, dict[str, Any]] = {}  # form id -> JSON, of the forms of this request that were deployed
    models: list[tuple[int, ProcessModel, Resource]] = []
    for resource in files:
        if is_decisions(resource.filename):
            outcome = _deploy_decisions(bus, actor, resource)
        elif is_form(resource.filename):
            outcome = _deploy_form(bus, actor, resource)
            if outcome.status != "refused" and outcome.process_id is not None:
                forms[outcome.process_id] = json.loads(resource.data)
        else:
            outcome = FileOutcome(resource.filename, "process", "refused")
            try:
                models.append((len(outcomes), check_process(resource, task_types), resource))
            except BpmnRejected as exc:
                outcome.problems = list(exc.problems)
        outcomes.append(outcome)
    stored = _StoredForms(bus, actor.tenant)
    for at, model, resource in models:  # after the forms: a process may link a form deployed in the same request
        problems = link_problems(linked_forms(resource.data), forms, stored.versions)
        if problems:
            outcomes[at] = FileOutcome(resource.filename, "process", "refused", model.process_id, problems=problems)
            continue
        named = {form_id: forms[form_id] for form_id in sorted(form_references(model)) if form_id in forms}
        outcomes[at] = _deploy(bus, actor, resource, model, named)
    return outcomes


class _StoredForms:
    """The stored versions of each form the tenant sees (its own, then the shipped ones), read once if asked."""

    def __init__(self, bus: CommandBus, tenant: str) -> None:
        self._bus, self._tenant = bus, tenant
        self._scopes: list[ProcessDeployments] | None = None

    def versions(self, form_id: str) -> list[dict[str, Any]]:
        if self._scopes is None:
            self._scopes = [ProcessDeployments.replay(deployments_id(scope), self._bus.store.events_of(
                deployments_id(scope))) for scope in (self._tenant, SHIPPED)]
        return [json.loads(v.xml) for scope in self._scopes for v in scope.form_versions.get(form_id, [])]


def _deploy(bus: CommandBus, actor: Actor, resource: Resource, model: ProcessModel,
            forms: dict[str, Any]) -> FileOutcome:
    xml = resource.data.decode("utf-8")
    command = DeployProcess(process_id=model.process_id, name=model.deployed.name or "", filename=resource.filename,
                            xml=xml, content_hash=xml_hash(xml), forms=forms)
    try:
        result = bus.dispatch(command, actor)
    except Forbidden:
        raise
    except InvalidStateChange:  # the newest version has this content (and these forms): nothing new was stored
        deployments = ProcessDeployments.replay(deployments_id(actor.tenant),
                                                bus.store.events_of(deployments_id(actor.tenant)))
        latest = deployments.latest(model.process_id)
        if latest is None or latest.content_hash != command.content_hash:
            raise
        return FileOutcome(resource.filename, "process", "unchanged", model.process_id, latest.version,
                           latest.content_hash, sorted(latest.forms))
    except DomainError as exc:  # this file only: the others go on
        return FileOutcome(resource.filename, "process", "refused", model.process_id,
                           problems=[Problem(None, exc.detail)])
    return FileOutcome(resource.filename, "process", "deployed" if result.extra["new"] else "unchanged",
                       model.process_id, int(str(result.extra["process_version"])), str(result.extra["content_hash"]),
                       sorted(forms))


def _deploy_decisions(bus: CommandBus, actor: Actor, resource: Resource) -> FileOutcome:
    try:
        definitions_id, name, decision_ids = check_decisions(resource)
        xml = resource.data.decode("utf-8")
    except BpmnRejected as exc:
        return FileOutcome(resource.filename, "decisions", "refused", problems=list(exc.problems))
    except UnicodeDecodeError as exc:
        return FileOutcome(resource.filename, "decisions", "refused",
                           problems=[Problem(None, f"the file is not UTF-8 text (byte {exc.start})")])
    command = DeployProcess(process_id=definitions_id, name=name, filename=resource.filename, xml=xml,
                            content_hash=xml_hash(xml), kind="dmn")
    return _send(bus, actor, command, FileOutcome(resource.filename, "decisions", "refused", definitions_id,
                                                  forms=decision_ids))


def _deploy_form(bus: CommandBus, actor: Actor, resource: Resource) -> FileOutcome:
    """A form deployed on its own: a new version of its id unless the newest one has the same content."""
    outcome = FileOutcome(resource.filename, "form", "refused")
    try:
        form_id, form = read_form(resource)
        text = resource.data.decode("utf-8")
    except FormRejected as exc:
        outcome.problems = [Problem(None, str(exc))]
        return outcome
    except UnicodeDecodeError as exc:
        outcome.problems = [Problem(None, f"the file is not UTF-8 text (byte {exc.start})")]
        return outcome
    outcome.forms = [form_id]
    if not PROCESS_ID_PATTERN.fullmatch(form_id):
        outcome.problems = [Problem(None, f"the form id {form_id!r} must match {PROCESS_ID_PATTERN.pattern} (a "
                                          "letter or '_', then letters, digits, '_', '-', '.')")]
        return outcome
    name = form.get("name") if isinstance(form.get("name"), str) else ""
    outcome.process_id = form_id
    return _send(bus, actor, DeployProcess(process_id=form_id, name=str(name)[:500], filename=resource.filename,
                                           xml=text, content_hash=xml_hash(text), kind="form"), outcome)


def _send(bus: CommandBus, actor: Actor, command: DeployProcess, outcome: FileOutcome) -> FileOutcome:
    """Dispatch a DMN or form deployment; `outcome` (refused, naming the file and id) is filled with what became
    of it."""
    try:
        result = bus.dispatch(command, actor)
    except Forbidden:
        raise
    except InvalidStateChange:  # the newest version has this content: nothing new was stored
        deployments = ProcessDeployments.replay(deployments_id(actor.tenant),
                                                bus.store.events_of(deployments_id(actor.tenant)))
        latest = deployments.latest(command.process_id, command.kind)
        if latest is None or latest.content_hash != command.content_hash:
            raise
        outcome.status, outcome.version, outcome.content_hash = "unchanged", latest.version, latest.content_hash
        return outcome
    except DomainError as exc:  # this file only: the others go on
        outcome.problems = [Problem(None, exc.detail)]
        return outcome
    outcome.status = "deployed" if result.extra["new"] else "unchanged"
    outcome.version, outcome.content_hash = int(str(result.extra["process_version"])), str(
        result.extra["content_hash"])
    return outcome


def deploy_shipped(bus: CommandBus, paths: Sequence[Path]) -> list[FileOutcome]:
    """Deploy the shipped BPMN files into the shipped scope, as the engine's actor (same content: no new version)."""
    actor = Actor("casestream", SHIPPED, ("process",))
    try:
        outcomes = deploy_files(bus, actor, [Resource(path.name, path.read_bytes()) for path in paths])
    except Forbidden as exc:  # a policy that predates deployments (an OPA server not restarted): said, not fatal
        outcomes = [FileOutcome(path.name, "process", "refused", problems=[Problem(None, exc.detail)])
                    for path in paths]
    for outcome in outcomes:
        if outcome.status == "refused":
            log.error("shipped process not deployed: %s", outcome.message())
    return outcomes
