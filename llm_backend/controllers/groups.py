"""Tag ``Groups``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_groups = refused("list-groups")
create_group = refused("create-group")
retrieve_group = refused("retrieve-group")
update_group = refused("update-group")
delete_group = refused("delete-group")
