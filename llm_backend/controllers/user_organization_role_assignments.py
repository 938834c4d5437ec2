"""Tag ``User organization role assignments``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_user_role_assignments = refused("list-user-role-assignments")
assign_user_role = refused("assign-user-role")
retrieve_user_role = refused("retrieve-user-role")
unassign_user_role = refused("unassign-user-role")
