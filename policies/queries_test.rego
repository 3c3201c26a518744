# Query actions: read, read_reference, read_audit, read_mail_quarantine.
package casestream.authz_test

import data.casestream.authz

definition := {"kind": "definition", "definition_key": "claim", "access": {}}

test_every_reading_role_reads_cases_and_reference_data if {
	every role in ["viewer", "caseworker", "worker", "supervisor", "admin"] {
		allows([role], "read", definition)
		allows([role], "read_reference", {"kind": "tenant"})
	}
}

test_only_admins_read_the_audit_log if {
	allows(["admin"], "read_audit", {"kind": "tenant"})
	every role in ["viewer", "caseworker", "worker", "supervisor", "process"] {
		denies([role], "read_audit", {"kind": "tenant"})
	}
	"only admins read the audit log" in decide(["supervisor"], "read_audit", {"kind": "tenant"}).reasons
}

test_read_needs_a_definition_resource if {
	denies(["viewer"], "read", {"kind": "tenant"})
}

test_roles_combine if {
	allows(["viewer", "admin"], "read_audit", {"kind": "tenant"})
	allows(["viewer", "caseworker"], "AddComment", case_resource("open"))
}

test_only_admins_read_the_mail_quarantine if {
	allows(["admin"], "read_mail_quarantine", {"kind": "tenant"})
	every role in ["viewer", "caseworker", "worker", "supervisor", "process", "mail"] {
		denies([role], "read_mail_quarantine", {"kind": "tenant"})
	}
	"only admins read the mail quarantine" in decide(["supervisor"], "read_mail_quarantine", {"kind": "tenant"}).reasons
}

test_only_admins_read_process_deployments if {
	allows(["admin"], "read_processes", {"kind": "tenant"})
	every role in ["viewer", "caseworker", "worker", "supervisor", "process", "mail"] {
		denies([role], "read_processes", {"kind": "tenant"})
	}
	"only admins read process deployments" in decide(["supervisor"], "read_processes", {"kind": "tenant"}).reasons
}
