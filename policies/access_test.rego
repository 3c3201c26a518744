# Per-definition access rules on top of the base rules: read_groups, write_groups, restrict.
package casestream.authz_test

import data.casestream.authz

confidential := {"read_groups": ["fraud-team"]}

with_groups(roles, groups, act, resource) := answer if {
	subject := {"user": "alice", "tenant": "acme", "roles": roles, "groups": groups}
	answer := authz.decision with input as {"subject": subject, "action": act, "resource": resource}
}

case_with(access, status) := object.union(case_resource(status), {"access": access})

test_read_groups_hide_a_definition_from_everyone_else_admins_included if {
	resource := {"kind": "definition", "definition_key": "fraud", "access": confidential}
	every role in ["viewer", "caseworker", "supervisor", "admin"] {
		with_groups([role], ["claims-team"], "read", resource).allow == false
		with_groups([role], ["fraud-team"], "read", resource).allow == true
	}
	reasons := with_groups(["admin"], [], "read", resource).reasons
	"definition fraud is visible only to groups [fraud-team]" in reasons
}

test_read_groups_also_bar_commands if {
	resource := object.union(case_with(confidential, "open"), {"definition_key": "fraud"})
	with_groups(["supervisor"], [], "AddComment", resource).allow == false
	with_groups(["supervisor"], ["fraud-team"], "AddComment", resource).allow == true
	task := object.union(task_resource("open"), {"case": resource})
	with_groups(["supervisor"], [], "CancelTask", task).allow == false
	with_groups(["supervisor"], ["fraud-team"], "CancelTask", task).allow == true
	opening := {"kind": "definition", "definition_key": "fraud", "exists": true, "access": confidential}
	with_groups(["caseworker"], [], "OpenCase", opening).allow == false
	with_groups(["caseworker"], ["fraud-team"], "OpenCase", opening).allow == true
}

test_write_groups_bar_commands_but_not_reads if {
	access := {"write_groups": ["claims-team"]}
	with_groups(["caseworker"], ["other"], "UpdateCaseData", case_with(access, "open")).allow == false
	with_groups(["caseworker"], ["claims-team"], "UpdateCaseData", case_with(access, "open")).allow == true
	definition_resource := {"kind": "definition", "definition_key": "claim", "access": access}
	with_groups(["viewer"], ["other"], "read", definition_resource).allow == true
	reasons := with_groups(["admin"], [], "AssignCase", case_with(access, "open")).reasons
	"definition claim takes commands only from groups [claims-team]" in reasons
}

test_restrict_limits_a_command_to_roles if {
	access := {"restrict": {"CloseCase": ["supervisor"]}}
	mine := object.union(case_with(access, "open"), {"assignee": "alice"})
	with_groups(["caseworker"], [], "CloseCase", mine).allow == false
	with_groups(["supervisor"], [], "CloseCase", mine).allow == true
	with_groups(["admin"], [], "CloseCase", mine).allow == false
	with_groups(["caseworker"], [], "AddComment", mine).allow == true
	reasons := with_groups(["caseworker"], [], "CloseCase", mine).reasons
	"definition claim allows CloseCase only to roles [supervisor]" in reasons
}

test_restrict_never_widens_the_base_rules if {
	access := {"restrict": {"ArchiveCase": ["caseworker"]}}
	with_groups(["caseworker"], [], "ArchiveCase", case_with(access, "closed")).allow == false
}

test_the_process_engine_is_exempt_from_access_rules if {
	access := {"read_groups": ["fraud-team"], "write_groups": ["fraud-team"], "restrict": {"CloseCase": ["admin"]}}
	with_groups(["process"], [], "CloseCase", case_with(access, "open")).allow == true
}

test_null_access_rules_mean_none if {
	with_groups(["caseworker"], [], "AddComment", case_with(null, "open")).allow == true
}

test_reasons_are_plain_text if {
	d := with_groups(["cafe\"worker"], [], "Add\\Comment", case_resource("open"))
	d.allow == false
	"no rule allows Add?Comment for roles [cafe?worker]" in d.reasons
}

test_restrict_to_no_role_refuses_everyone_but_the_process if {
	access := {"restrict": {"AddComment": []}}
	reasons := with_groups(["admin"], [], "AddComment", case_with(access, "open")).reasons
	"definition claim allows AddComment to no role" in reasons
	with_groups(["process"], [], "AddComment", case_with(access, "open")).allow == true
}
