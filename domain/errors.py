"""Domain errors: each a named class the API maps to one HTTP status and a problem+json body."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every refusal the domain makes; `code` is stable and appears in problem+json `type`."""

    code: str = "domain-error"
    status: int = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class FieldError:
    """One invalid field: its JSON path (e.g. `data.amount`) and what is wrong."""

    path: str
    message: str


class ValidationFailed(DomainError):
    """Input does not satisfy a schema or a rule; `errors` names each field path."""

    code = "validation-failed"
    status = 422

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class NotFound(DomainError):
    """The named case, definition, queue, record type or record does not exist (in this tenant)."""

    code = "not-found"
    status = 404


class AlreadyExists(DomainError):
    """Creating something whose key is taken."""

    code = "already-exists"
    status = 409


class UnknownStage(DomainError):
    """The stage is not defined by the case's definition."""

    code = "unknown-stage"
    status = 422


class StageTransitionNotAllowed(DomainError):
    """The definition does not allow moving from the current stage to the requested one."""

    code = "stage-transition-not-allowed"
    status = 409


class CaseNotOpen(DomainError):
    """The case is closed or archived and refuses this change."""

    code = "case-not-open"
    status = 409


class InvalidStateChange(DomainError):
    """A lifecycle change that makes no sense in the current state (e.g. reopening an open case)."""

    code = "invalid-state-change"
    status = 409


class NothingToChange(InvalidStateChange):
    """The change is already so (the case is in that queue, the title is that title): answered like any invalid
    change (409), but a process job whose command changes nothing has done its work (processes/jobs.py)."""


class UnknownQueue(DomainError):
    """The queue is not one the case definition allows."""

    code = "unknown-queue"
    status = 422


class CommentNotFound(DomainError):
    """No comment with that id on this case (or it was deleted)."""

    code = "comment-not-found"
    status = 404


class NotPermitted(DomainError):
    """The actor may not do this (e.g. edit someone else's comment)."""

    code = "not-permitted"
    status = 403


class VersionConflict(DomainError):
    """The aggregate's version is not the one the command expected, or a concurrent write won."""

    code = "version-conflict"
    status = 409


class CommandIdReused(DomainError):
    """A command_id was used before with a different command or payload."""

    code = "command-id-reused"
    status = 409




class Forbidden(DomainError):
    """The authorization policy denies this actor this action on this resource; `reasons` says why."""

    code = "forbidden"
    status = 403

    def __init__(self, detail: str, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(detail)
        self.reasons = reasons


class PolicyUnavailable(DomainError):
    """The policy engine could not be asked (OPA unreachable, timed out): never an allow; retry later."""

    code = "policy-unavailable"
    status = 503
    retry_after_seconds = 2


class CommandFailed(DomainError):
    """A command failed for a reason that is not a refusal (a defect); it alone fails, nothing of it is stored."""

    code = "internal-error"
    status = 500
