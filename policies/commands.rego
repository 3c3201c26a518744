# Base rules for commands: role x command x case state.
package casestream.authz

# Commands a caseworker sends to an open case.
open_case_work := {
	"UpdateCaseData", "RetitleCase", "MoveCaseToStage", "AssignCase", "UnassignCase", "QueueCase",
	"AddComment", "EditComment", "DeleteComment", "RequestNotification", "CreateTask",
	"RequestDocumentUpload", "ConfirmDocumentUpload", "RenameDocument", "RemoveDocument", "ComposeEmail",
}

# Legal hold on a document: supervisors and admins, in every case state (a hold matters most on closed cases;
# the domain refuses to remove a held document).
legal_hold_commands := {"PlaceLegalHold", "ReleaseLegalHold"}

case_commands := (open_case_work | legal_hold_commands) | {"CloseCase", "ReopenCase", "ArchiveCase"}

task_commands := {"ClaimTask", "UnclaimTask", "CompleteTask", "CancelTask", "ChangeTaskPriority", "AssignTask"}

# Reference data and definitions: supervisors and admins only.
reference_commands := {"PublishCaseDefinition", "DefineQueue", "DefineRecordType", "SaveRecord", "RemoveRecord"}

# Process deployments (BPMN and forms): admins only; the engine's own actor deploys the shipped processes at start.
deploy_commands := {"DeployProcess"}

# The document worker (same internal actor) records virus scans and previews of stored bytes, in every case state.
document_worker_commands := {"RecordDocumentScan", "RecordDocumentPreview"}

# The process engine drives case and task lifecycles, records its steps and keeps saga records.
process_commands := (((case_commands | task_commands) | document_worker_commands) | deploy_commands) | {"RecordProcessStep", "SaveRecord", "RemoveRecord"}

# The mail adapters record what arrives and what the outbox sent, and file attachments as documents.
mail_commands := {
	"ReceiveEmail", "SetEmailAside", "RecordEmailSent", "RecordEmailFailed",
	"RequestDocumentUpload", "ConfirmDocumentUpload",
}

commands := (((case_commands | task_commands) | reference_commands) | mail_commands) | {"OpenCase", "RecordProcessStep"}

# The case a case or task command acts on.
target_case := input.resource if input.resource.kind == "case"

target_case := input.resource.case if input.resource.kind == "task"

case_is_open if target_case.status == "open"

task_is_mine if input.resource.assignee == input.subject.user

task_is_mine if input.resource.claimed_by == input.subject.user

permitted if {
	is_process
	action in process_commands
}

permitted if {
	is_mail
	action in mail_commands
}

permitted if {
	works_cases
	input.resource.kind == "definition"
	action == "OpenCase"
}

permitted if {
	works_cases
	input.resource.kind == "case"
	action in open_case_work
	case_is_open
}

permitted if {
	works_cases
	input.resource.kind == "case"
	action == "CloseCase"
	case_is_open
	input.resource.assignee == input.subject.user
}

permitted if {
	works_cases
	input.resource.kind == "task"
	action in {"ClaimTask", "UnclaimTask"}
	case_is_open
}

permitted if {
	works_cases
	input.resource.kind == "task"
	action == "CompleteTask"
	case_is_open
	task_is_mine
}

permitted if {
	supervises
	input.resource.kind == "case"
	action == "CloseCase"
	case_is_open
}

# A closed or archived case still takes these from a supervisor (the domain refuses what makes no sense).
permitted if {
	supervises
	input.resource.kind == "case"
	action in {"ReopenCase", "ArchiveCase", "AddComment"}
}

permitted if {
	supervises
	input.resource.kind == "case"
	action in legal_hold_commands
}

permitted if {
	supervises
	input.resource.kind == "task"
	action in task_commands
	case_is_open
}

permitted if {
	supervises
	action in reference_commands
}

permitted if {
	administers
	action in deploy_commands
}

# Specific reasons, named beside the general one when no base rule permits a command.
state_denials contains "the subject has no known role" if knows_no_role

state_denials contains "viewers change nothing" if {
	action in commands
	reads
	not works_cases
	not is_process
}

state_denials contains concat("", ["the case is ", target_case.status, ": only a supervisor reopens, archives or comments on it"]) if {
	action in commands
	not is_process
	not target_case.status == "open"
}

state_denials contains "only the case's assignee or a supervisor closes a case" if {
	action == "CloseCase"
	works_cases
	case_is_open
}

state_denials contains "only the task's assignee or claimant or a supervisor completes a task" if {
	action == "CompleteTask"
	works_cases
	case_is_open
}

state_denials contains "only a supervisor places or releases a legal hold" if {
	action in legal_hold_commands
	works_cases
}

state_denials contains "only the process engine records process steps" if action == "RecordProcessStep"

state_denials contains "only admins deploy processes" if action in deploy_commands

state_denials contains "only the document worker records scans and previews" if {
	action in document_worker_commands
	not is_process
}

state_denials contains "only the mail adapters record received and sent e-mail" if {
	action in {"ReceiveEmail", "SetEmailAside", "RecordEmailSent", "RecordEmailFailed"}
	not is_mail
}
