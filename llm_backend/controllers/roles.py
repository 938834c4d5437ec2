"""Tag ``Roles``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_roles = refused("list-roles")
create_role = refused("create-role")
retrieve_role = refused("retrieve-role")
update_role = refused("update-role")
delete_role = refused("delete-role")
list_project_roles = refused("list-project-roles")
create_project_role = refused("create-project-role")
retrieve_project_role = refused("retrieve-project-role")
update_project_role = refused("update-project-role")
delete_project_role = refused("delete-project-role")
