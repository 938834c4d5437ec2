"""The official SDK's clients for a live server, and servers that require keys: built here
once for every suite (no retries, so a test sees exactly what the server answered)."""

from __future__ import annotations

from pathlib import Path

import openai

from tests.support.server import LiveServer


def sdk(live: LiveServer, api_key: str = "client-key", timeout: float = 120, max_retries: int = 0, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.api, api_key=api_key, max_retries=max_retries, timeout=timeout, **options)


def async_sdk(live: LiveServer, api_key: str = "client-key", timeout: float = 120) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=live.api, api_key=api_key, max_retries=0, timeout=timeout)


def keyed_server(
    workdir: Path, keys: list[str], admin_keys: list[str] = (), env: dict[str, str] | None = None, **options
) -> LiveServer:
    """A server (not started) that accepts only ``keys`` (and ``admin_keys`` as admins)."""
    env = {"LLM_BACKEND_API_KEYS": ",".join(keys), **(env or {})}
    if admin_keys:
        env["LLM_BACKEND_ADMIN_KEYS"] = ",".join(admin_keys)
    return LiveServer(workdir, env=env, **options)


def admin_sdk(live: LiveServer, admin_key: str = "admin-key", timeout: float = 120) -> openai.OpenAI:
    """The SDK's admin client (``client.admin.organization...``), as an operator holds it."""
    return openai.OpenAI(base_url=live.api, api_key=admin_key, admin_api_key=admin_key, max_retries=0, timeout=timeout)
