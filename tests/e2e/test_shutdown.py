"""A graceful stop (SIGTERM: a rolling update, a scale-down) finishes the answers in flight,
streams included, and takes no new connection; an endless stream (the admin watch) does not
hold the stop. `make deploy-check` shows the same with two replicas behind one Service."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from tests.support.clients import TLS
from tests.support.server import log_size, logged

GRACE = 20
# uvicorn ends by raising the signal it caught again, after its graceful shutdown.
STOPPED = (0, -signal.SIGTERM)
# Long enough to be still streaming when SIGTERM follows its first chunk.
LONG_STREAM = {
    "model": "smollm2",
    "messages": [{"role": "user", "content": "Count from 1 to 100, separated by commas."}],
    "max_tokens": 120,
    "stream": True,
}


@pytest.fixture
def stopping_server(start_server):
    # SIGTERM goes to the uvicorn process only (as tini sends it); its engine workers are
    # stopped by its shutdown, or by start_server's process-group stop.
    return start_server(env={"LLM_BACKEND_SHUTDOWN_GRACE": str(GRACE)})


@pytest.fixture
def stopping_gateway(start_server):
    """The same without a local model (a pure gateway): for a stop that no answer holds,
    it saves loading the model (~0.6 s of CPU)."""
    return start_server(env={"LLM_BACKEND_SHUTDOWN_GRACE": str(GRACE), "LLM_BACKEND_LOCAL_MODELS": "false"})


def _terminate(server) -> float:
    os.kill(server.process.pid, signal.SIGTERM)
    return time.monotonic()


def test_a_stream_in_flight_is_finished_after_sigterm_to_the_whole_group(stopping_server):
    # The whole process group, as Ctrl-C or systemd's control-group kill sends it: the
    # engine workers leave the signal to the API process, which drains, then stops them.
    with httpx.Client(base_url=stopping_server.base_url, timeout=60, verify=TLS) as http:
        with http.stream("POST", "/v1/chat/completions", json=LONG_STREAM) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert json.loads(first[len("data: "):])["object"] == "chat.completion.chunk"
            os.killpg(stopping_server.process.pid, signal.SIGTERM)
            rest = [line for line in lines if line.startswith("data: ")]
    chunks_after = len(rest) - 1
    assert chunks_after > 0, "the stream ended before SIGTERM: nothing was shown"
    assert rest[-1] == "data: [DONE]"
    finish = json.loads(rest[-2][len("data: "):])
    assert finish["choices"][0]["finish_reason"] in ("stop", "length")
    assert stopping_server.process.wait(GRACE) in STOPPED


def test_no_new_connection_is_taken_while_stopping(stopping_server):
    with httpx.Client(base_url=stopping_server.base_url, timeout=60, verify=TLS) as http:
        with http.stream("POST", "/v1/chat/completions", json=LONG_STREAM) as response:
            lines = response.iter_lines()
            next(line for line in lines if line.startswith("data: "))
            _terminate(stopping_server)
            time.sleep(0.5)
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{stopping_server.base_url}/health", timeout=5, verify=TLS)
            rest = [line for line in lines if line]
            assert rest[-1] == "data: [DONE]"


def test_an_endless_watch_ends_at_once_and_whole_at_the_stop(stopping_gateway):
    since = log_size(stopping_gateway)
    with httpx.Client(base_url=stopping_gateway.base_url, timeout=60, verify=TLS) as http:
        with http.stream("GET", "/admin/events") as response:
            assert response.status_code == 200
            began = _terminate(stopping_gateway)
            # Ended, not cut: its body whole (a client reconnects as after a cut; a cut was
            # an error line in the log, uvicorn's "returned without completing response").
            lines = list(response.iter_lines())
    assert lines[0] == "event: status"
    assert stopping_gateway.process.wait(GRACE) in STOPPED
    assert time.monotonic() - began < GRACE / 2
    assert logged(stopping_gateway, since, "error") == []
