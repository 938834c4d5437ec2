"""Never lose data: kill -9 the server during a burst of stored completions, restart it, and
find every completion that was answered to a client, in a consistent database."""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import sqlalchemy as sa

from tests.support.clients import sdk
from tests.conftest import MODEL
from tests.storage.conftest import KEY_A

# Enough that some are still in flight when the fourth answer comes (the kill).
BURST = 32
KILL_AFTER = 4


HEADERS = {"Authorization": f"Bearer {KEY_A}"}


def _ask(api: str, tag: str, n: int) -> str:
    """One stored completion; its id once fully answered (for a stream: after [DONE])."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"Say {n}."}],
        "max_tokens": 2,
        "store": True,
        "metadata": {"burst": tag},
    }
    if n % 2:
        body["stream"] = True
        with httpx.stream("POST", api + "/chat/completions", json=body, headers=HEADERS, timeout=120) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        return httpx.Response(200, content=lines[0][6:]).json()["id"]
    return httpx.post(api + "/chat/completions", json=body, headers=HEADERS, timeout=120).json()["id"]


def test_kill_9_during_a_burst_loses_no_answered_completion(store_server):
    """Kills the shared server of this database kind, and restarts it on the same database
    and port: the tests after this one use the restarted server."""
    live, url = store_server, store_server.database_url
    tag = uuid.uuid4().hex
    answered: list[str] = []
    enough = threading.Event()

    def ask(n: int) -> None:
        try:
            answered.append(_ask(live.api, tag, n))
        except Exception:
            return  # cut off by the kill: never answered, so nothing is promised
        if len(answered) >= KILL_AFTER:
            enough.set()

    with ThreadPoolExecutor(max_workers=8) as pool:
        for n in range(BURST):
            pool.submit(ask, n)
        assert enough.wait(120), live.log()
        os.killpg(live.process.pid, signal.SIGKILL)
        live.process.wait()
        killed_with = list(answered)
    assert len(killed_with) < BURST, "the kill came after the burst: nothing was in flight"
    live.start()
    client = sdk(live, api_key=KEY_A)
    stored = {c.id: c for c in client.chat.completions.list(metadata={"burst": tag}, limit=100)}
    assert set(answered) <= set(stored)
    assert all(c.choices and c.metadata == {"burst": tag} for c in stored.values())
    # Consistent: the JSON metadata and the metadata rows (what filters use) agree exactly.
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        by_json = {
            row.id
            for row in connection.execute(sa.text("SELECT id, metadata FROM chat_completions"))
            if (json.loads(row.metadata) if isinstance(row.metadata, str) else row.metadata).get("burst") == tag
        }
        by_rows = set(
            connection.scalars(
                sa.text(
                    "SELECT c.id FROM chat_completions c JOIN chat_completion_metadata m ON m.seq = c.seq "
                    "WHERE m.key = 'burst' AND m.value = :tag"
                ),
                {"tag": tag},
            )
        )
        if engine.dialect.name == "sqlite":
            assert connection.scalar(sa.text("PRAGMA integrity_check")) == "ok"
    engine.dispose()
    assert by_json == by_rows == set(stored)
