"""Libraries the API process loads only when they are used (its memory before the first
request, issue #27): aiohttp for an upstream, Alembic for a database not yet at head
(tests/storage/test_migrations.py). Each build runs in a fresh interpreter, whose modules
are the evidence."""

from __future__ import annotations

import json
import os
import subprocess
import sys

BUILD = """
import json, sys
from llm_backend.app import create_app
create_app()
print(json.dumps(sorted({name.split('.')[0] for name in sys.modules} & {'aiohttp'})))
"""


def loaded_by_a_build(tmp_path, **env: str) -> list[str]:
    environment = {name: value for name, value in os.environ.items() if name != "OPENAI_API_KEY"}
    environment.update(LLM_BACKEND_DATA_DIR=str(tmp_path), LLM_BACKEND_MODEL_LOAD="lazy", **env)
    done = subprocess.run([sys.executable, "-c", BUILD], env=environment, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_without_an_upstream_the_api_loads_no_aiohttp(tmp_path):
    assert loaded_by_a_build(tmp_path) == []


def test_with_an_upstream_it_does(tmp_path):
    assert loaded_by_a_build(tmp_path, OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://127.0.0.1:9/v1") == ["aiohttp"]
