"""Libraries the API process loads only when they are used (its memory before the first
request, issue #27): aiohttp for an upstream, numpy for the first vector store's indexing or
search, Alembic for a database not yet at head (tests/storage/test_migrations.py), the MCP SDK
for the first remote MCP tool (0.45 s of every start-up's CPU). Each
service is built and started (its lifespan run) in a fresh interpreter, whose modules are the
evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support.server import shared_caches

BUILD = """
import asyncio, json, sys
from llm_backend.app import create_app

async def started_and_stopped(app):
    inbox = asyncio.Queue()
    for message in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": message})
    sent = []

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"], sent

asyncio.run(started_and_stopped(create_app()))
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules} & {'aiohttp', 'numpy', 'mcp'})))
"""


def loaded_by_a_build(tmp_path, **env: str) -> list[str]:
    environment = {name: value for name, value in os.environ.items() if name != "OPENAI_API_KEY"}
    environment.update(LLM_BACKEND_DATA_DIR=str(tmp_path), LLM_BACKEND_MODEL_LOAD="lazy", **shared_caches(), **env)
    done = subprocess.run([sys.executable, "-c", BUILD], env=environment, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_an_upstream_the_api_starts_without_aiohttp_numpy_or_mcp(tmp_path):
    assert loaded_by_a_build(tmp_path) == []


def test_with_an_upstream_it_does(tmp_path):
    assert loaded_by_a_build(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:9/v1") == ["aiohttp"]


def test_the_engine_worker_imports_no_pydantic():
    # Each worker start (~190 a test run, every restart of a crashed worker) paid ~0.08 CPU-s
    # for pydantic and the model settings, for one rule (settings/ceiling.py).
    probe = "import sys, llm_backend.backends.llama.worker; print(sorted(m for m in ('pydantic', 'llm_backend.settings.model') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]"
