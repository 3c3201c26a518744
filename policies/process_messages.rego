# Process messages (docs/processes.md, "Messages"): admins and worker service accounts (the integrations that
# tell processes what happened outside) publish; the process engine's own actor publishes too (automation) and
# alone records which instance a message went to, or that nothing waited for it.
package casestream.authz

publish_message_commands := {"PublishProcessMessage"}

permitted if {
	has_any_role(["admin", "worker", "process"])
	input.resource.kind == "process_message"
	action in publish_message_commands
}

permitted if {
	is_process
	input.resource.kind == "process_message"
	action in {"CorrelateProcessMessage", "RecordMessageUnmatched"}
}

state_denials contains "only admins, worker service accounts and the process engine publish process messages" if {
	action in publish_message_commands
}

state_denials contains "only the process engine records message correlations" if {
	action in {"CorrelateProcessMessage", "RecordMessageUnmatched"}
}
