"""Tag ``Spend alerts``: the organisation's and each project's (serving/admin/spend.py;
fired by serving/metering/meter.py)."""

from ..http.context import caller, current
from ..http.rendering import json_response
from ..serving.admin import spend


async def list_organization_spend_alerts(limit=None, order="asc", after=None, before=None):
    return json_response(await spend.list_alerts(current(), None, limit, order, after, before))


async def create_organization_spend_alert(body):
    return json_response(await spend.create_alert(current(), caller(), body))


async def retrieve_organization_spend_alert(alert_id):
    return json_response(spend.alert_object(await spend.alert_of(current(), alert_id)))


async def update_organization_spend_alert(alert_id, body):
    return json_response(await spend.update_alert(current(), caller(), alert_id, body))


async def delete_organization_spend_alert(alert_id):
    return json_response(await spend.delete_alert(current(), caller(), alert_id))


async def list_project_spend_alerts(project_id, limit=None, order="asc", after=None, before=None):
    return json_response(await spend.list_alerts(current(), project_id, limit, order, after, before))


async def create_project_spend_alert(project_id, body):
    return json_response(await spend.create_alert(current(), caller(), body, project_id))


async def retrieve_project_spend_alert(project_id, alert_id):
    return json_response(spend.alert_object(await spend.alert_of(current(), alert_id, project_id)))


async def update_project_spend_alert(project_id, alert_id, body):
    return json_response(await spend.update_alert(current(), caller(), alert_id, body, project_id))


async def delete_project_spend_alert(project_id, alert_id):
    return json_response(await spend.delete_alert(current(), caller(), alert_id, project_id))
