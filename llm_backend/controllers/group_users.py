"""Tag ``Group users``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_group_users = refused("list-group-users")
add_group_user = refused("add-group-user")
retrieve_group_user = refused("retrieve-group-user")
remove_group_user = refused("remove-group-user")
