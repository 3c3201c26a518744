# Process operations: admins only.
package casestream.authz_test

operations := ["RetryIncident", "CancelProcessInstance", "SetProcessVariables", "RequestProcessOperation"]

test_only_admins_operate_process_instances if {
	every act in operations {
		allows(["admin"], act, {"kind": "process_instance"})
		every role in ["viewer", "caseworker", "worker", "supervisor", "process", "mail"] {
			denies([role], act, {"kind": "process_instance"})
		}
	}
	reasons := decide(["supervisor"], "RetryIncident", {"kind": "process_instance"}).reasons
	"only admins retry incidents and cancel or change process instances" in reasons
}

test_only_admins_read_process_operations if {
	allows(["admin"], "read_process_operations", {"kind": "tenant"})
	every role in ["viewer", "caseworker", "worker", "supervisor", "process", "mail"] {
		denies([role], "read_process_operations", {"kind": "tenant"})
	}
	"only admins read incidents and process instances" in decide(["caseworker"], "read_process_operations", {"kind": "tenant"}).reasons
}

test_only_the_engine_records_operation_outcomes if {
	allows(["process"], "RecordProcessOperationOutcome", {"kind": "process_operation"})
	every role in ["viewer", "caseworker", "worker", "supervisor", "admin", "mail"] {
		denies([role], "RecordProcessOperationOutcome", {"kind": "process_operation"})
	}
	reason := "only the process engine records what became of a process operation"
	reason in decide(["admin"], "RecordProcessOperationOutcome", {"kind": "process_operation"}).reasons
}
