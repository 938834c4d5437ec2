"""Tag ``Project group role assignments``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_project_group_role_assignments = refused("list-project-group-role-assignments")
assign_project_group_role = refused("assign-project-group-role")
retrieve_project_group_role = refused("retrieve-project-group-role")
unassign_project_group_role = refused("unassign-project-group-role")
