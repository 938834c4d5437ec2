"""The control plane's errors, in OpenAI's shape (the same ``OpenAIError`` as errors.py's
catalogue, which is the rest of the service's)."""

from __future__ import annotations

from ...errors import OpenAIError, bad_request, not_found


def no_project(project_id: str) -> OpenAIError:
    return not_found("project", project_id, "project_id")


def archived_project(project_id: str) -> OpenAIError:
    return bad_request(f"Project '{project_id}' is archived: nothing can be added to it.", "project_id", "project_archived")


def no_people(operation_id: str) -> OpenAIError:
    # Users, invites, roles, groups and certificates: this service has no people, only
    # projects and their service accounts' keys (docs/ADMIN.md).
    return OpenAIError(
        404,
        f"This service has no users, invites, roles, groups or certificates: its tenants are projects, reached "
        f"with their service accounts' keys. The operation '{operation_id}' has nothing to act on here.",
        code="no_people",
    )


def tool_not_permitted(tool: str, project_id: str, param: str) -> OpenAIError:
    return OpenAIError(
        403,
        f"The hosted tool '{tool}' is not permitted for project '{project_id}' (its hosted tool permissions).",
        param=param,
        code="tool_not_permitted",
    )


def model_rate_limited(model: str, project: str, kind: str, per: str, limit: int, used: int, wait: int) -> OpenAIError:
    """A project's limit on a model reached (OpenAI's words, naming the project as OpenAI names the organisation)."""
    unit = {"requests": "R", "tokens": "T", "audio bytes": "AB", "batch input tokens": "BT", "images": "I"}[kind] + ("PD" if per == "day" else "PM")
    wait = max(1, wait)
    return OpenAIError(
        429,
        f"Rate limit reached for {model} in project {project} on {kind} per {per} ({unit}): Limit {limit}, Used {used}, "
        f"Requested 1. Please try again in {wait}s.",
        code="rate_limit_exceeded",
        type="tokens" if "tokens" in kind else "requests",
        headers={"retry-after": str(wait)},
    )
