"""The hosted tools a local model cannot call, which only OpenAI's cloud runs: web search,
image generation, the code interpreter, computer use.

Coding agents send them on every turn, so by default they are left out of what the model is
offered when ``tool_choice`` lets it choose, and named by ``dropped`` (the controller's
``x-llm-backend-dropped-tools`` header); ``responses_hosted_tools: refuse`` makes them a 400
instead (``check_hosted``), and a ``tool_choice`` that forces one is always a 400 (``forced``).
Apart from ``client_tools.py`` (the tools a local model can call, which uses this) because
the request translation and the controller read it too. Not ``serving/admin/hosted_tools.py``,
which says which hosted tools a project may use at all.
"""

from __future__ import annotations

from ...errors import bad_request, hosted_tool_forced
from ...json.types import Json


# Built-in tools that only OpenAI's cloud can run (what they need, for the 400 when forced).
CLOUD_TOOLS = {
    "web_search": "web search",
    "web_search_preview": "web search",
    "web_search_2025_08_26": "web search",
    "web_search_preview_2025_03_11": "web search",
    "computer": "computer use",
    "computer_use_preview": "computer use",
    "computer_use": "computer use",
    "image_generation": "image generation",
    "code_interpreter": "the code interpreter",
}
DROPPED_HEADER = "x-llm-backend-dropped-tools"


def check_hosted(body: Json, policy: str) -> None:
    """With ``responses_hosted_tools: refuse``: a hosted tool is a 400 naming it (OpenAI
    would run it; silently answering without it is what a client may not want)."""
    if policy != "refuse":
        return
    for index, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type")
        if kind in CLOUD_TOOLS:
            raise bad_request(
                f"'tools[{index}].type' is not supported by local models: the '{kind}' tool needs "
                f"{CLOUD_TOOLS[kind]} in OpenAI's cloud.",
                f"tools[{index}].type",
                "unsupported_parameter",
            )


def forced(kind: str, param: str) -> Exception:
    return hosted_tool_forced(kind, CLOUD_TOOLS.get(kind) or "OpenAI's cloud", param)


def dropped(body: Json) -> list[str]:
    """The hosted tools of ``body`` not offered to the model (``tool_choice`` forcing one is a 400)."""
    return [tool["type"] for tool in body.get("tools") or [] if tool.get("type") in CLOUD_TOOLS]
