# Tiny case-access policy used to check that the OPA server evaluates Rego v1 (not the product policy).
package casestream.authz

default allow := false

# Administrators may do anything.
allow if "admin" in input.subject.roles

# Caseworkers may read and update cases of their own team.
allow if {
	"caseworker" in input.subject.roles
	input.action in {"read", "update"}
	input.case.team == input.subject.team
}

reasons contains "not in the case's team" if {
	not "admin" in input.subject.roles
	input.case.team != input.subject.team
}

reasons contains "action not allowed for caseworkers" if {
	"caseworker" in input.subject.roles
	not input.action in {"read", "update"}
}
