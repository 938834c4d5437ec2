"""Tag ``Project user role assignments``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_project_user_role_assignments = refused("list-project-user-role-assignments")
assign_project_user_role = refused("assign-project-user-role")
retrieve_project_user_role = refused("retrieve-project-user-role")
unassign_project_user_role = refused("unassign-project-user-role")
