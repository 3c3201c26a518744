"""Commands: immutable, typed, imperative requests to change something. Unknown fields are refused."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, field_validator

from commands.mail_definition import MailSettingsIn

ScanStatus = Literal["clean", "infected", "unscanned"]  # a scanner's verdict on stored bytes


class Command(BaseModel):
    """Base: an optional client-supplied idempotency key and an optional expected version."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=20_000)
    # path parameters of the command's HTTP endpoint (not part of its request body)
    target_fields: ClassVar[tuple[str, ...]] = ()

    command_id: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="Idempotency key: a repeat returns the first result and stores nothing new.",
    )
    expected_version: StrictInt | None = Field(
        default=None, ge=0, description="Refuse with 409 unless the target is at this version."
    )


class StageIn(BaseModel):
    """A stage of a definition, as submitted."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    key: str
    name: str = ""
    transitions: list[str] = Field(default_factory=list)


class AutomationRuleIn(BaseModel):
    """An automation rule, as submitted: on an event type, when a FEEL condition holds, do an action."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    on: str = Field(max_length=100, description="Event type name, e.g. CommentAdded.")
    action: str = Field(max_length=40, description="correlate-message | set-queue | move-stage | assign | "
                                                   "start-process")
    value: str = Field(max_length=200, description="Message name, queue, stage, user or process id.")
    when: str = Field(default="", max_length=2000, description="FEEL condition over the event (leading '=').")


# a group or role name in a definition's access rules: no surrounding whitespace, bounded
AccessName = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^\S(.*\S)?$")]


def command_type_names() -> frozenset[str]:
    """The names of every command type (what `access.restrict` may name); the shared bases are none."""
    found: set[str] = set()
    todo = list(Command.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        found.add(cls.__name__)
    return frozenset(found - {"CaseCommand", "TaskCommand", "DocumentCommand"})


class AccessIn(BaseModel):
    """A definition's own access rules, applied on top of the base rules for every role (docs/authorization.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    read_groups: list[AccessName] = Field(
        default_factory=list, max_length=50,
        description="When not empty, only members of one of these groups see or change the definition's cases.",
    )
    write_groups: list[AccessName] = Field(
        default_factory=list, max_length=50,
        description="When not empty, only members of one of these groups send commands to its cases.",
    )
    restrict: dict[str, list[AccessName]] = Field(
        default_factory=dict, max_length=50,
        description="A command type name -> the only roles that may send it to this definition's cases.",
    )

    @field_validator("restrict")
    @classmethod
    def _known_commands(cls, restrict: dict[str, list[str]]) -> dict[str, list[str]]:
        known = command_type_names()
        for command, roles in restrict.items():
            if command not in known:
                raise ValueError(f"unknown command type {command!r}")
            if not 1 <= len(roles) <= 50:
                raise ValueError(f"{command} must name 1-50 roles")
        return restrict


class DocumentLimitsIn(BaseModel):
    """A definition's limits on its cases' documents."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    max_size: StrictInt = Field(default=100 * 1024 * 1024, ge=1, le=5 * 1024**4, description="Largest file in bytes.")
    allowed_types: list[Annotated[str, StringConstraints(min_length=3, max_length=200)]] = Field(
        default_factory=list, max_length=100, description="Media types allowed (empty: any).")


class PublishCaseDefinition(Command):
    """Create a case definition, or publish a new version of it."""

    key: str = Field(max_length=40)
    name: str = Field(max_length=200)
    schema_: dict[str, Any] = Field(alias="schema")
    ui_schema: dict[str, Any] = Field(default_factory=dict)
    stages: list[StageIn] = Field(min_length=1, max_length=100)
    statuses: list[str] = Field(default_factory=list, max_length=50)
    queues: list[str] = Field(default_factory=list, max_length=100)
    card_fields: list[str] = Field(default_factory=list, max_length=20)
    number_prefix: str = ""
    lifecycle_process: str | None = Field(default=None, max_length=100,
                                          description="Process started when a case is opened.")
    stage_processes: dict[str, list[str]] = Field(default_factory=dict,
                                                  description="Processes started when a case enters each stage.")
    automation: list[AutomationRuleIn] = Field(default_factory=list, max_length=50)
    access: AccessIn | None = Field(default=None, description="The definition's own access rules (none: the "
                                                              "base rules alone).")
    documents: DocumentLimitsIn | None = Field(default=None, description="Limits on its cases' documents (none: "
                                                                         "100 MiB, any type).")
    mail: MailSettingsIn | None = Field(default=None, description="Its mailbox, case-data mapping and e-mail "
                                                                  "templates (none: no e-mail).")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class OpenCase(Command):
    """Open a case of a definition with data valid against its schema."""

    definition_key: str = Field(max_length=40)
    title: str = Field(max_length=200)
    data: dict[str, Any] = Field(default_factory=dict)


class CaseCommand(Command):
    """A command addressed to one existing case."""

    target_fields: ClassVar[tuple[str, ...]] = ("case_id",)
    case_id: UUID


class UpdateCaseData(CaseCommand):
    """Merge-patch the case's data (RFC 7396: null removes a field)."""

    patch: dict[str, Any]


class RetitleCase(CaseCommand):
    title: str = Field(max_length=200)


class MoveCaseToStage(CaseCommand):
    stage: str = Field(max_length=40)


class AssignCase(CaseCommand):
    assignee: str = Field(max_length=200)


class UnassignCase(CaseCommand):
    pass


class QueueCase(CaseCommand):
    """Put the case in a queue of its definition (null takes it out of any queue)."""

    queue: str | None = Field(max_length=40)


class AddComment(CaseCommand):
    body: str
    parent_id: str | None = None


class EditComment(CaseCommand):
    target_fields: ClassVar[tuple[str, ...]] = ("case_id", "comment_id")
    comment_id: str
    body: str


class DeleteComment(CaseCommand):
    target_fields: ClassVar[tuple[str, ...]] = ("case_id", "comment_id")
    comment_id: str
    reason: str = ""


class CloseCase(CaseCommand):
    reason: str = Field(max_length=2000)
    resolution: str | None = None


class ReopenCase(CaseCommand):
    reason: str = Field(max_length=2000)


class ArchiveCase(CaseCommand):
    reason: str = Field(max_length=2000)


class DefineQueue(Command):
    key: str = Field(max_length=40)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)


class DefineRecordType(Command):
    key: str = Field(max_length=40)
    name: str = Field(max_length=200)
    schema_: dict[str, Any] = Field(alias="schema")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class SaveRecord(Command):
    target_fields: ClassVar[tuple[str, ...]] = ("type_key",)
    type_key: str = Field(max_length=40)
    key: str = Field(max_length=40)
    data: dict[str, Any]


class RemoveRecord(Command):
    target_fields: ClassVar[tuple[str, ...]] = ("type_key", "key")
    type_key: str = Field(max_length=40)
    key: str = Field(max_length=40)
    reason: str = Field(default="", max_length=2000)


class RequestNotification(CaseCommand):
    """Ask for a notification about the case: a workflow (template) name, its recipients and a payload."""

    workflow: str = Field(max_length=100)
    recipients: list[str] = Field(min_length=1, max_length=50)
    payload: dict[str, Any] = Field(default_factory=dict)


class CreateTask(Command):
    """Create a task on an open case: ad hoc by a person, or for a BPMN user task by its process."""

    target_fields: ClassVar[tuple[str, ...]] = ("case_id",)
    case_id: UUID
    task_id: UUID | None = Field(
        default=None, description="Given by processes (deterministic); a new id when omitted."
    )
    title: str = Field(max_length=200)
    description: str = Field(default="", max_length=20_000)
    form_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema the completion data must satisfy."
    )
    assignee: str | None = Field(default=None, max_length=200)
    candidate_groups: list[str] = Field(default_factory=list, max_length=20)
    due_at: datetime | None = None
    priority: StrictInt = Field(default=50, ge=0, le=100)
    process_instance_key: str | None = Field(default=None, max_length=200)
    element_id: str | None = Field(default=None, max_length=200)


class TaskCommand(Command):
    """A command addressed to one existing task."""

    target_fields: ClassVar[tuple[str, ...]] = ("task_id",)
    task_id: UUID


class ClaimTask(TaskCommand):
    """Take a task to work on it."""


class UnclaimTask(TaskCommand):
    """Hand a claimed task back."""


class CompleteTask(TaskCommand):
    """Complete a task with form data valid against its form schema."""

    data: dict[str, Any] = Field(default_factory=dict)


class CancelTask(TaskCommand):
    """Cancel a task that is not finished."""

    reason: str = Field(default="", max_length=2000)


class ChangeTaskPriority(TaskCommand):
    """Set a task's priority (0-100)."""

    priority: StrictInt = Field(ge=0, le=100)


class AssignTask(TaskCommand):
    """Assign a task to a user (null removes its assignee)."""

    assignee: str | None = Field(max_length=200)


class StepEventIn(BaseModel):
    """One event of a process-instance step: its type name and payload."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: str = Field(max_length=60)
    payload: dict[str, Any]


class RecordProcessStep(Command):
    """Record one embedded-engine step of a process instance (issued by the engine, not by people)."""

    instance_id: UUID
    events: list[StepEventIn] = Field(min_length=1, max_length=20)


# -- documents (docs/documents.md) -----------------------------------------------------------------------------

Sha256 = Annotated[str, StringConstraints(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]


class RequestDocumentUpload(CaseCommand):
    """Ask to upload a new document (or, with document_id, a new version of one): declares what will be sent."""

    document_id: UUID | None = Field(default=None, description="A new version of this document; a new one if none.")
    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=3, max_length=200)
    size: StrictInt = Field(ge=1, description="Exact size in bytes.")
    sha256: Sha256 = Field(description="SHA-256 of the bytes, 64 lower-case hex digits.")


class ConfirmDocumentUpload(CaseCommand):
    """Attach an uploaded file with what its stored bytes measured (sent by the confirm endpoint, never a client)."""

    target_fields: ClassVar[tuple[str, ...]] = ("case_id", "document_id", "upload_id")
    document_id: UUID
    upload_id: str = Field(max_length=100)
    size: StrictInt = Field(ge=0)
    sniffed_type: str = Field(max_length=200)
    sha256: Sha256
    object_key: str = Field(max_length=1000)
    scan: ScanStatus = Field(
        default="unscanned", description="The scanner's verdict on the bytes; unscanned versions stay pending.")
    scan_reason: str = Field(default="", max_length=2000, description="What the scanner found (infected).")


class DocumentCommand(CaseCommand):
    """A command addressed to one document of a case."""

    target_fields: ClassVar[tuple[str, ...]] = ("case_id", "document_id")
    document_id: UUID


class RenameDocument(DocumentCommand):
    """Rename a document."""

    filename: str = Field(min_length=1, max_length=255)


class RemoveDocument(DocumentCommand):
    """Remove a document from the case (its history and bytes are kept); refused while it is under legal hold."""

    reason: str = Field(default="", max_length=2000)


class PlaceLegalHold(DocumentCommand):
    """Put a document under legal hold: it cannot be removed until the hold is released."""

    reason: str = Field(default="", max_length=2000)


class ReleaseLegalHold(DocumentCommand):
    """Release a document's legal hold."""

    reason: str = Field(default="", max_length=2000)


class RecordDocumentScan(DocumentCommand):
    """Record the scan of a pending version (issued by the document worker, not by people)."""

    version_number: StrictInt = Field(ge=1)
    clean: bool
    reason: str = Field(default="", max_length=2000)


class RecordDocumentPreview(DocumentCommand):
    """Record a version's thumbnail, or why none could be made (issued by the document worker, not by people)."""

    version_number: StrictInt = Field(ge=1)
    preview_key: str = Field(default="", max_length=1000)
    error: str = Field(default="", max_length=2000)
