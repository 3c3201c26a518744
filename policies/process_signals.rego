# Process signals (docs/processes.md, "Signals"): admins and worker service accounts broadcast (Zeebe's
# broadcast-signal command), and so does the process engine's own actor; it alone records what a broadcast did.
package casestream.authz

broadcast_signal_commands := {"BroadcastSignal"}

permitted if {
	has_any_role(["admin", "worker", "process"])
	input.resource.kind == "process_signal"
	action in broadcast_signal_commands
}

permitted if {
	is_process
	input.resource.kind == "process_signal"
	action == "RecordSignalDelivered"
}

state_denials contains "only admins, worker service accounts and the process engine broadcast signals" if {
	action in broadcast_signal_commands
}

state_denials contains "only the process engine records signal deliveries" if {
	action == "RecordSignalDelivered"
}
