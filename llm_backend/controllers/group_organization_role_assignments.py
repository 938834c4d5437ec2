"""Tag ``Group organization role assignments``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_group_role_assignments = refused("list-group-role-assignments")
assign_group_role = refused("assign-group-role")
retrieve_group_role = refused("retrieve-group-role")
unassign_group_role = refused("unassign-group-role")
