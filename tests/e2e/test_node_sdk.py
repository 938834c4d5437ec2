"""Smoke test with the official Node SDK (npm `openai`, pinned in tests/node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.conftest import MODEL

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def test_node_sdk_lists_models_streams_a_chat_and_embeds(server):
    assert shutil.which("node"), "node is required (Node 20 is on the machine)"
    assert (NODE_DIR / "node_modules" / "openai").is_dir(), "run `make test` (it installs tests/node)"
    result = subprocess.run(
        ["node", "smoke.mjs", server.api, MODEL], cwd=NODE_DIR, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert MODEL in seen["models"]
    assert len(seen["deltas"]) >= 3 and "".join(seen["deltas"]).strip()
    assert seen["finishReason"] in ("stop", "length")
    assert seen["embeddingCount"] == 2 and seen["embeddingLength"] > 100


def test_the_node_sdks_responses_websocket_client_holds_a_conversation_on_one_connection(server):
    # openai 7's ResponsesWS: the second turn sends only its new input and the first's id.
    result = subprocess.run(
        ["node", "responses_ws.mjs", server.api, MODEL], cwd=NODE_DIR, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    first, second = seen["first"], seen["second"]
    for turn in (first, second):
        assert turn["error"] is None and turn["status"] in ("completed", "incomplete"), turn
        assert turn["events"][:2] == ["response.created", "response.in_progress"] and turn["text"].strip(), turn
    assert second["previous"] == first["id"] and second["id"] != first["id"]
