"""Tag ``Audit Logs``: the control plane's changes, newest first (serving/admin/audit.py)."""

from ..http.context import current
from ..http.rendering import json_response
from ..serving.admin import audit


async def list_audit_logs(
    effective_at=None, project_ids=None, event_types=None, actor_ids=None, actor_emails=None, resource_ids=None,
    tenant_only=False, limit=20, after=None, before=None
):
    return json_response(
        await audit.list_page(
            current(), effective_at, project_ids, event_types, actor_ids, actor_emails, resource_ids, tenant_only, limit, after, before
        )
    )
