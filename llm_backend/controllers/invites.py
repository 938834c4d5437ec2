"""Tag ``Invites``: this service has no people (serving/admin/people.py): each
operation answers an honest 404."""

from ..serving.admin.people import refused

list_invites = refused("list-invites")
invite_user = refused("inviteUser")
retrieve_invite = refused("retrieve-invite")
delete_invite = refused("delete-invite")
