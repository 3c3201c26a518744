# Process messages: admins, workers and the engine publish; only the engine records correlations.
package casestream.authz_test

message := {"kind": "process_message"}

test_admins_workers_and_the_engine_publish_messages if {
	every role in ["admin", "worker", "process"] {
		allows([role], "PublishProcessMessage", message)
	}
	every role in ["viewer", "caseworker", "supervisor", "mail"] {
		denies([role], "PublishProcessMessage", message)
	}
	reasons := decide(["caseworker"], "PublishProcessMessage", message).reasons
	"only admins, worker service accounts and the process engine publish process messages" in reasons
}

test_only_the_engine_records_correlations if {
	every act in ["CorrelateProcessMessage", "RecordMessageUnmatched"] {
		allows(["process"], act, message)
		every role in ["viewer", "caseworker", "worker", "supervisor", "admin", "mail"] {
			denies([role], act, message)
		}
		"only the process engine records message correlations" in decide(["admin"], act, message).reasons
	}
}
