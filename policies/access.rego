# Per-definition access rules (read_groups, write_groups, restrict), applied on top of the base rules for every
# role; the internal actors (process engine, mailbox) act for the definition itself and are exempt.
package casestream.authz

# The resource that carries the definition's rules: a case, a task's case, or the definition itself.
governed := input.resource if input.resource.kind in {"case", "definition"}

governed := input.resource.case if input.resource.kind == "task"

access := governed.access if is_object(governed.access)

else := {}

definition_key := governed.definition_key if is_string(governed.definition_key)

else := "?"

read_groups := access.read_groups if is_array(access.read_groups)

else := []

write_groups := access.write_groups if is_array(access.write_groups)

else := []

access_denials contains concat("", ["definition ", definition_key, " is visible only to groups [", concat(", ", read_groups), "]"]) if {
	not internal_actor
	count(read_groups) > 0
	not in_any_group(read_groups)
}

access_denials contains concat("", ["definition ", definition_key, " takes commands only from groups [", concat(", ", write_groups), "]"]) if {
	not internal_actor
	not action in query_actions
	count(write_groups) > 0
	not in_any_group(write_groups)
}

access_denials contains concat("", ["definition ", definition_key, " allows ", action, " only to roles [", concat(", ", allowed_roles), "]"]) if {
	not internal_actor
	allowed_roles := access.restrict[action]
	count(allowed_roles) > 0
	not has_any_role(allowed_roles)
}

access_denials contains concat("", ["definition ", definition_key, " allows ", action, " to no role"]) if {
	not internal_actor
	allowed_roles := access.restrict[action]
	count(allowed_roles) == 0
}
