# Process signals: admins, workers and the engine broadcast; only the engine records deliveries.
package casestream.authz_test

signal := {"kind": "process_signal"}

test_admins_workers_and_the_engine_broadcast_signals if {
	every role in ["admin", "worker", "process"] {
		allows([role], "BroadcastSignal", signal)
	}
	every role in ["viewer", "caseworker", "supervisor", "mail"] {
		denies([role], "BroadcastSignal", signal)
	}
	reasons := decide(["caseworker"], "BroadcastSignal", signal).reasons
	"only admins, worker service accounts and the process engine broadcast signals" in reasons
}

test_only_the_engine_records_signal_deliveries if {
	allows(["process"], "RecordSignalDelivered", signal)
	every role in ["viewer", "caseworker", "worker", "supervisor", "admin", "mail"] {
		denies([role], "RecordSignalDelivered", signal)
	}
	"only the process engine records signal deliveries" in decide(["admin"], "RecordSignalDelivered", signal).reasons
}

test_a_signal_is_no_process_message if {
	denies(["worker"], "BroadcastSignal", {"kind": "process_message"})
}
