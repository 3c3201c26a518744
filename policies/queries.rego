# Base rules for queries: read (cases of one definition), read_reference, read_audit.
package casestream.authz

query_actions := {"read", "read_reference", "read_audit", "read_mail_quarantine", "read_processes"}

permitted if {
	reads
	input.resource.kind == "definition"
	action == "read"
}

permitted if {
	reads
	action == "read_reference"
}

permitted if {
	administers
	action == "read_audit"
}

state_denials contains "only admins read the audit log" if action == "read_audit"

permitted if {
	administers
	action == "read_mail_quarantine"
}

state_denials contains "only admins read the mail quarantine" if action == "read_mail_quarantine"

permitted if {
	administers
	action == "read_processes"
}

state_denials contains "only admins read process deployments" if action == "read_processes"
