"""Tag ``Project groups``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_project_groups = refused("list-project-groups")
add_project_group = refused("add-project-group")
retrieve_project_group = refused("retrieve-project-group")
remove_project_group = refused("remove-project-group")
