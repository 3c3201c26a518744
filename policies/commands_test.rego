# Role x command family x case state: the base rules of docs/authorization.md.
package casestream.authz_test

import data.casestream.authz

statuses := ["open", "closed", "archived"]

closed_statuses := ["closed", "archived"]

# Commands of a caseworker on an open case that need no ownership.
open_case_work := [
	"UpdateCaseData", "RetitleCase", "MoveCaseToStage", "AssignCase", "UnassignCase", "QueueCase",
	"AddComment", "EditComment", "DeleteComment", "RequestNotification", "CreateTask",
]

case_commands := array.concat(open_case_work, ["CloseCase", "ReopenCase", "ArchiveCase"])

task_commands := ["ClaimTask", "UnclaimTask", "CompleteTask", "CancelTask", "ChangeTaskPriority", "AssignTask"]

reference_commands := ["PublishCaseDefinition", "DefineQueue", "DefineRecordType", "SaveRecord", "RemoveRecord"]

case_resource(status) := {
	"kind": "case", "definition_key": "claim", "stage": "intake", "status": status, "queue": null,
	"assignee": "someone-else", "owner": "someone-else", "access": {},
}

task_resource(status) := {
	"kind": "task", "status": "open", "assignee": null, "claimed_by": "someone-else",
	"candidate_groups": ["claims-team"], "case": case_resource(status),
}

request(roles, act, resource) := {
	"subject": {"user": "alice", "tenant": "acme", "roles": roles, "groups": []},
	"action": act,
	"resource": resource,
}

decide(roles, act, resource) := answer if {
	answer := authz.decision with input as request(roles, act, resource)
}

allows(roles, act, resource) if decide(roles, act, resource).allow == true

denies(roles, act, resource) if {
	d := decide(roles, act, resource)
	d.allow == false
	count(d.reasons) > 0
}

resource_for(act, status) := task_resource(status) if act in task_commands

else := case_resource(status)

all_commands := array.concat(
	array.concat(case_commands, task_commands),
	array.concat(reference_commands, ["OpenCase", "RecordProcessStep"]),
)

test_viewer_changes_nothing if {
	every act in all_commands {
		every status in statuses {
			denies(["viewer"], act, resource_for(act, status))
		}
	}
	"viewers change nothing" in decide(["viewer"], "AddComment", case_resource("open")).reasons
}

test_no_role_or_unknown_roles_get_nothing if {
	every roles in [[], ["auditor"], ["Admin"]] {
		every act in array.concat(all_commands, ["read", "read_reference", "read_audit"]) {
			denies(roles, act, resource_for(act, "open"))
		}
	}
	"the subject has no known role" in decide(["auditor"], "read", {"kind": "definition"}).reasons
	"no rule allows read without a role" in decide([], "read", {"kind": "definition"}).reasons
}

test_caseworker_and_worker_work_open_cases if {
	every role in ["caseworker", "worker"] {
		every act in open_case_work {
			allows([role], act, case_resource("open"))
		}
	}
}

test_caseworker_changes_no_closed_or_archived_case if {
	every status in closed_statuses {
		every act in case_commands {
			denies(["caseworker"], act, case_resource(status))
		}
		every act in task_commands {
			denies(["caseworker"], act, task_resource(status))
		}
	}
	reasons := decide(["caseworker"], "AddComment", case_resource("closed")).reasons
	"the case is closed: only a supervisor reopens, archives or comments on it" in reasons
}

test_caseworker_closes_only_own_case if {
	denies(["caseworker"], "CloseCase", case_resource("open"))
	allows(["caseworker"], "CloseCase", object.union(case_resource("open"), {"assignee": "alice"}))
	reasons := decide(["caseworker"], "CloseCase", case_resource("open")).reasons
	"only the case's assignee or a supervisor closes a case" in reasons
}

test_caseworker_neither_reopens_nor_archives if {
	every status in statuses {
		denies(["caseworker"], "ReopenCase", case_resource(status))
		denies(["worker"], "ArchiveCase", case_resource(status))
	}
}

test_caseworker_claims_and_unclaims_tasks_of_open_cases if {
	allows(["caseworker"], "ClaimTask", task_resource("open"))
	allows(["worker"], "UnclaimTask", task_resource("open"))
}

test_caseworker_completes_only_own_task if {
	denies(["caseworker"], "CompleteTask", task_resource("open"))
	allows(["caseworker"], "CompleteTask", object.union(task_resource("open"), {"claimed_by": "alice"}))
	allows(["caseworker"], "CompleteTask", object.union(task_resource("open"), {"claimed_by": null, "assignee": "alice"}))
	reasons := decide(["caseworker"], "CompleteTask", task_resource("open")).reasons
	"only the task's assignee or claimant or a supervisor completes a task" in reasons
}

test_caseworker_may_not_manage_tasks_or_reference_data if {
	every act in ["CancelTask", "ChangeTaskPriority", "AssignTask"] {
		denies(["caseworker"], act, task_resource("open"))
	}
	every act in reference_commands {
		denies(["caseworker"], act, {"kind": "record_type", "type_key": "x"})
	}
	denies(["caseworker"], "RecordProcessStep", {"kind": "process"})
}

test_caseworker_opens_cases if {
	allows(["caseworker"], "OpenCase", {"kind": "definition", "definition_key": "claim", "exists": true, "access": {}})
	denies(["viewer"], "OpenCase", {"kind": "definition", "definition_key": "claim", "exists": true, "access": {}})
}

test_supervisor_and_admin_do_everything_on_open_cases if {
	every role in ["supervisor", "admin"] {
		every act in case_commands {
			allows([role], act, case_resource("open"))
		}
		every act in task_commands {
			allows([role], act, task_resource("open"))
		}
		allows([role], "OpenCase", {"kind": "definition", "definition_key": "claim", "exists": false, "access": {}})
	}
}

test_supervisor_reopens_archives_and_comments_on_closed_cases_only if {
	every role in ["supervisor", "admin"] {
		every status in closed_statuses {
			allows([role], "ReopenCase", case_resource(status))
			allows([role], "ArchiveCase", case_resource(status))
			allows([role], "AddComment", case_resource(status))
			every act in array.concat(["UpdateCaseData", "EditComment", "CloseCase", "CreateTask"], task_commands) {
				denies([role], act, resource_for(act, status))
			}
		}
	}
}

test_supervisor_manages_reference_data if {
	every act in reference_commands {
		allows(["supervisor"], act, {"kind": "record_type", "type_key": "x"})
		allows(["admin"], act, {"kind": "record_type", "type_key": "x"})
	}
	allows(["supervisor"], "DefineQueue", {"kind": "queue"})
}

test_process_sends_case_and_task_commands_and_steps if {
	every act in array.concat(case_commands, task_commands) {
		every status in statuses {
			allows(["process"], act, resource_for(act, status))
		}
	}
	allows(["process"], "RecordProcessStep", {"kind": "process"})
	allows(["process"], "SaveRecord", {"kind": "record_type", "type_key": "account"})
	denies(["process"], "PublishCaseDefinition", {"kind": "definition", "definition_key": "x", "exists": false})
	denies(["process"], "read", {"kind": "definition", "definition_key": "claim", "access": {}})
}

test_only_the_process_records_steps if {
	every role in ["viewer", "caseworker", "worker", "supervisor", "admin"] {
		denies([role], "RecordProcessStep", {"kind": "process"})
	}
}

test_only_the_document_worker_records_scans_and_previews if {
	every act in ["RecordDocumentScan", "RecordDocumentPreview"] {
		every status in statuses {
			allows(["process"], act, case_resource(status))
		}
		every role in ["viewer", "caseworker", "worker", "supervisor", "admin", "mail"] {
			denies([role], act, case_resource("open"))
		}
	}
}

test_unknown_action_is_denied_with_its_name if {
	d := decide(["admin"], "DropDatabase", case_resource("open"))
	d.allow == false
	"no rule allows DropDatabase for roles [admin]" in d.reasons
}

test_empty_input_is_denied if {
	d := authz.decision with input as {}
	d.allow == false
	count(d.reasons) > 0
}

test_mismatched_resource_kind_is_denied if {
	denies(["caseworker"], "AddComment", task_resource("open"))
	denies(["caseworker"], "ClaimTask", case_resource("open"))
	denies(["supervisor"], "ReopenCase", {"kind": "tenant"})
}

# Documents (docs/documents.md): the work of a caseworker on an open case; legal hold for supervisors only.
document_work := ["RequestDocumentUpload", "ConfirmDocumentUpload", "RenameDocument", "RemoveDocument"]

legal_hold := ["PlaceLegalHold", "ReleaseLegalHold"]

test_caseworkers_work_documents_of_open_cases_only if {
	every act in document_work {
		allows(["caseworker"], act, case_resource("open"))
		allows(["supervisor"], act, case_resource("open"))
		every status in closed_statuses {
			denies(["caseworker"], act, case_resource(status))
			denies(["supervisor"], act, case_resource(status))
		}
	}
}

test_only_supervisors_and_admins_place_or_release_a_legal_hold_in_every_state if {
	every act in legal_hold {
		every status in statuses {
			allows(["supervisor"], act, case_resource(status))
			allows(["admin"], act, case_resource(status))
			denies(["caseworker"], act, case_resource(status))
			denies(["worker"], act, case_resource(status))
		}
	}
	"only a supervisor places or releases a legal hold" in decide(["caseworker"], "PlaceLegalHold", case_resource("open")).reasons
}

test_viewers_and_the_roleless_touch_no_document if {
	every act in array.concat(document_work, legal_hold) {
		denies(["viewer"], act, case_resource("open"))
		denies([], act, case_resource("open"))
	}
}

mailbox_definition := {"kind": "definition", "definition_key": "claim", "exists": true, "access": {}}

test_mail_records_received_and_sent_mail_and_files_attachments if {
	allows(["mail"], "ReceiveEmail", mailbox_definition)
	every act in ["SetEmailAside", "RecordEmailSent", "RecordEmailFailed"] {
		allows(["mail"], act, {"kind": "mailbox"})
	}
	every act in ["RequestDocumentUpload", "ConfirmDocumentUpload"] {
		allows(["mail"], act, case_resource("open"))
	}
	denies(["mail"], "CloseCase", case_resource("open"))
	denies(["mail"], "PublishCaseDefinition", {"kind": "definition", "definition_key": "x", "exists": false})
	denies(["mail"], "read", {"kind": "definition", "definition_key": "claim", "access": {}})
}

test_only_the_mail_adapters_record_mail if {
	every role in ["viewer", "caseworker", "worker", "supervisor", "admin", "process"] {
		denies([role], "ReceiveEmail", mailbox_definition)
		denies([role], "SetEmailAside", {"kind": "mailbox"})
		denies([role], "RecordEmailSent", {"kind": "mailbox"})
	}
}

test_mailbox_is_not_bound_by_write_groups if {
	guarded := object.union(mailbox_definition, {"access": {"write_groups": ["claims-team"]}})
	allows(["mail"], "ReceiveEmail", guarded)
}

test_caseworker_composes_email_on_open_cases_only if {
	allows(["caseworker"], "ComposeEmail", case_resource("open"))
	allows(["process"], "ComposeEmail", case_resource("open"))
	denies(["caseworker"], "ComposeEmail", case_resource("closed"))
	denies(["viewer"], "ComposeEmail", case_resource("open"))
}

test_only_admins_and_the_engine_deploy_processes if {
	allows(["admin"], "DeployProcess", {"kind": "process_definition"})
	allows(["process"], "DeployProcess", {"kind": "process_definition"})
	every role in ["viewer", "caseworker", "worker", "supervisor", "mail"] {
		denies([role], "DeployProcess", {"kind": "process_definition"})
	}
	"only admins deploy processes" in decide(["supervisor"], "DeployProcess", {"kind": "process_definition"}).reasons
}
