# Who the subject is: role families and group membership, from input.subject.
package casestream.authz

known_roles := {"viewer", "caseworker", "worker", "supervisor", "admin", "process", "mail"}

roles contains role if some role in input.subject.roles

groups contains group if some group in input.subject.groups

sorted_roles := sort([role | some role in roles])

# Any role that may look at cases and reference data (the internal process actor never reads through the API).
reads if some role in (roles & {"viewer", "caseworker", "worker", "supervisor", "admin"})

# Caseworkers and worker service accounts, and everyone above them, work open cases.
works_cases if some role in (roles & {"caseworker", "worker", "supervisor", "admin"})

supervises if some role in (roles & {"supervisor", "admin"})

administers if "admin" in roles

# The internal BPMN engine's actor; verifiers strip this role from tokens.
is_process if "process" in roles

# The e-mail adapters' actor (IMAP poller, SMTP receiver, outbox); verifiers strip this role from tokens too.
is_mail if "mail" in roles

# Internal actors act for a definition itself (its processes, its mailbox): its access rules do not bind them.
internal_actor if is_process

internal_actor if is_mail

knows_no_role if count(roles & known_roles) == 0

in_any_group(names) if {
	some name in names
	name in groups
}

has_any_role(names) if {
	some name in names
	name in roles
}
