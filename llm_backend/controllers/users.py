"""Tag ``Users``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_users = refused("list-users")
retrieve_user = refused("retrieve-user")
modify_user = refused("modify-user")
delete_user = refused("delete-user")
