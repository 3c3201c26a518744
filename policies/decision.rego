# The one entry point every engine queries: data.casestream.authz.decision, always defined, deny by default.
package casestream.authz

default decision := {"allow": false, "reasons": ["no rule allows this request"]}

decision := {"allow": true, "reasons": []} if allowed

decision := {"allow": false, "reasons": sort([safe_text(reason) | some reason in denials])} if not allowed

# Reasons echo names from the request; keep them to plain characters so that every engine (regopy does not escape
# quotes or backslashes in its JSON answer) returns the same readable text.
safe_text(text) := regex.replace(text, `[^A-Za-z0-9 _.,:;@/()'=+#\[\]-]`, "?")

# A request is allowed when a base rule permits it and the definition's access rules do not object.
allowed if {
	permitted
	count(access_denials) == 0
}

action := input.action if is_string(input.action)

else := "an unnamed action"

# Why a request is refused: every specific reason that applies, and a general one when no base rule permits it.
# Messages are built with concat: regopy quotes a computed string that sprintf formats with %s.
denials contains concat("", ["no rule allows ", action, " for roles [", concat(", ", sorted_roles), "]"]) if {
	not permitted
	count(sorted_roles) > 0
}

denials contains concat("", ["no rule allows ", action, " without a role"]) if {
	not permitted
	count(sorted_roles) == 0
}

denials contains reason if {
	not permitted
	some reason in state_denials
}

denials contains reason if some reason in access_denials
