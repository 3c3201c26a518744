package casestream.authz_test

import data.casestream.authz

test_caseworker_reads_own_team_case if {
	authz.allow with input as {
		"subject": {"roles": ["caseworker"], "team": "intake"},
		"action": "read",
		"case": {"team": "intake"},
	}
}

test_caseworker_denied_other_team if {
	not authz.allow with input as {
		"subject": {"roles": ["caseworker"], "team": "intake"},
		"action": "read",
		"case": {"team": "appeals"},
	}
}

test_caseworker_may_not_delete if {
	decision_reasons := authz.reasons with input as {
		"subject": {"roles": ["caseworker"], "team": "intake"},
		"action": "delete",
		"case": {"team": "intake"},
	}
	"action not allowed for caseworkers" in decision_reasons
}

test_admin_allowed_anywhere if {
	authz.allow with input as {"subject": {"roles": ["admin"]}, "action": "delete", "case": {"team": "x"}}
}

test_empty_input_denied if {
	not authz.allow with input as {}
}
