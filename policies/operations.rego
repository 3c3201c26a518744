# Process operations (docs/processes.md, "Incidents and operations"): admins read incidents and process instances
# and retry, cancel or change them (directly, or by a request the engine applies); nobody else, the process
# engine's own actor included. The engine alone records what became of a request.
package casestream.authz

operations_commands := {"RetryIncident", "CancelProcessInstance", "SetProcessVariables", "RequestProcessOperation"}

permitted if {
	administers
	input.resource.kind == "process_instance"
	action in operations_commands
}

state_denials contains "only admins retry incidents and cancel or change process instances" if {
	action in operations_commands
}

permitted if {
	administers
	action == "read_process_operations"
}

state_denials contains "only admins read incidents and process instances" if action == "read_process_operations"

permitted if {
	is_process
	input.resource.kind == "process_operation"
	action == "RecordProcessOperationOutcome"
}

state_denials contains "only the process engine records what became of a process operation" if {
	action == "RecordProcessOperationOutcome"
}
