"""Hosted tool permissions (``/organization/projects/{id}/hosted_tool_permissions``): which
of OpenAI's hosted tools a project's requests may use. Every tool is enabled until turned
off; a request of a project that offers a tool turned off (``tools[i].type`` in a Responses
request, a Realtime session or response; ``web_search_options`` in a chat completion) is refused with 403
``tool_not_permitted`` naming it, whichever backend would have served it, on every replica
(the control plane's snapshot: within 2 s of a change)."""

from __future__ import annotations

from typing import Any

from ...auth import ANONYMOUS, Principal
from ..services import Services
from .audit import entry
from .errors import no_project, tool_not_permitted
from .projects import project_of

TOOLS = ("file_search", "web_search", "image_generation", "mcp", "code_interpreter")
# A request's tool types, as the permission that governs them.
KINDS = {
    "file_search": "file_search", "web_search": "web_search", "web_search_preview": "web_search",
    "web_search_2025_08_26": "web_search", "web_search_preview_2025_03_11": "web_search",
    "image_generation": "image_generation", "mcp": "mcp", "code_interpreter": "code_interpreter",
}


def shown(permissions: dict[str, Any] | None) -> dict[str, Any]:
    permissions = permissions or {}
    return {tool: {"enabled": bool(permissions.get(tool, True))} for tool in TOOLS}


async def retrieve(services: Services, project_id: str) -> dict[str, Any]:
    return shown((await project_of(services, project_id)).hosted_tools)


async def update(services: Services, caller: Principal, project_id: str, body: dict[str, Any]) -> dict[str, Any]:
    row = await project_of(services, project_id)
    changes = {tool: bool(body[tool]["enabled"]) for tool in TOOLS if isinstance(body.get(tool), dict)}
    if not changes:
        return shown(row.hosted_tools)
    permissions = {**(row.hosted_tools or {}), **changes}
    audit = entry(caller, "project.updated", {"changes_requested": {"hosted_tool_permissions": changes}}, project=row)
    database = services.database
    updated = await database.run(database.projects.change, project_id, {"hosted_tools": permissions}, audit)
    if updated is None:  # none by that id (projects are archived, never deleted)
        raise no_project(project_id)
    return shown(updated.hosted_tools)


async def check(services: Services, principal: Principal, body: dict[str, Any], prefix: str = "") -> None:
    """403 for a hosted tool ``body`` offers that ``principal``'s project has turned off;
    ``prefix``: where ``body`` is in the request (``session.``: a Realtime session's)."""
    if principal.owner == ANONYMOUS:
        return
    permissions = (await services.database.admin_snapshot.current()).hosted_tools.get(principal.owner)
    if not permissions:
        return
    tools = body.get("tools")
    for index, tool in enumerate(tools if isinstance(tools, list) else ()):
        kind = KINDS.get(tool["type"]) if isinstance(tool, dict) and isinstance(tool.get("type"), str) else None
        if kind is not None and permissions.get(kind) is False:
            raise tool_not_permitted(kind, principal.owner, f"{prefix}tools[{index}].type")
    if body.get("web_search_options") is not None and permissions.get("web_search") is False:
        raise tool_not_permitted("web_search", principal.owner, "web_search_options")
