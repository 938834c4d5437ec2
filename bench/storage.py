"""Storage figures for the lead's note (run: `.venv/bin/python bench/storage.py`).

1. Added latency of ``store: true`` on a non-streaming chat completion: median of ours with
   and without store, interleaved in the same run, max_tokens=1.
2. List latency with 10 000 stored completions of one owner (first page, a page deep behind
   ``after``, a metadata filter), over HTTP.
3. Does database work block the event loop? ``/health`` latency alone and while list
   requests run concurrently (the engine is synchronous; every call runs in a worker thread).

Each for SQLite (data dir, WAL) and PostgreSQL (a throwaway cluster with fsync on).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llm_backend.storage import Database  # noqa: E402
from llm_backend.storage.models import StoredChatCompletion  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402
from tests.support.server import LiveServer  # noqa: E402

MODEL = "smollm2"
ROWS = 10_000
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 1, "temperature": 0}


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def timed(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def fill(url: str, owner: str, rows: int) -> str:
    """``rows`` stored completions of ``owner``; the id of the one in the middle."""
    db = Database(url)
    db.upgrade()
    response = {
        "object": "chat.completion", "created": int(time.time()), "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!", "refusal": None},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
    ids = []
    with db.sessions.begin() as session:
        for n in range(rows):
            completion_id = "chatcmpl-" + uuid.uuid4().hex
            ids.append(completion_id)
            row = StoredChatCompletion(
                id=completion_id, owner=owner, model=MODEL, created=response["created"],
                request={**CHAT, "store": True}, response={**response, "id": completion_id},
            )
            row.set_metadata({"batch": str(n % 10), "n": str(n)})
            session.add(row)
    if db.dialect == "postgresql":
        # What autovacuum does within a minute of a bulk insert: without statistics the
        # planner sorts all 10 000 rows for the first page instead of walking the index.
        with db.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    db.dispose()
    return ids[rows // 2]


def store_latency(api: str, rounds: int = 40) -> dict:
    without, with_store = [], []
    with httpx.Client(timeout=120) as client:
        client.post(api + "/chat/completions", json=CHAT)  # warm up
        for _ in range(rounds):
            without.append(timed(lambda: client.post(api + "/chat/completions", json=CHAT).raise_for_status()))
            with_store.append(
                timed(lambda: client.post(api + "/chat/completions", json={**CHAT, "store": True}).raise_for_status())
            )
    return {
        "chat_median_ms_without_store": median_ms(without),
        "chat_median_ms_with_store": median_ms(with_store),
        "added_ms": round(median_ms(with_store) - median_ms(without), 2),
    }


def list_latency(api: str, middle_id: str, rounds: int = 30) -> dict:
    queries = {
        "list_first_page_ms": {"limit": 20},
        "list_after_middle_ms": {"limit": 20, "after": middle_id},
        "list_desc_limit_100_ms": {"limit": 100, "order": "desc"},
        "list_metadata_filter_ms": {"limit": 20, "metadata[batch]": "7", "metadata[n]": "5007"},
    }
    figures = {}
    with httpx.Client(timeout=60) as client:
        for name, params in queries.items():
            client.get(api + "/chat/completions", params=params).raise_for_status()
            figures[name] = median_ms(
                [timed(lambda: client.get(api + "/chat/completions", params=params).raise_for_status()) for _ in range(rounds)]
            )
    return figures


def loop_blocking(server: LiveServer, rounds: int = 40) -> dict:
    def health() -> list[float]:
        with httpx.Client(timeout=30) as client:
            return [timed(lambda: client.get(server.base_url + "/health")) for _ in range(rounds)]

    idle = health()
    stop = threading.Event()

    def lister() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                client.get(server.api + "/chat/completions", params={"limit": 100, "order": "desc"})

    threads = [threading.Thread(target=lister) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    busy = health()
    stop.set()
    for thread in threads:
        thread.join()
    return {"health_ms_idle": median_ms(idle), "health_ms_during_4_list_loops": median_ms(busy)}


def run(kind: str, url: str, workdir: Path) -> dict:
    middle_id = fill(url, "anonymous", ROWS)
    with LiveServer(workdir, env={"LLM_BACKEND_DATABASE_URL": url}) as server:
        figures = {"database": kind, "stored_rows": ROWS}
        figures.update(store_latency(server.api))
        figures.update(list_latency(server.api, middle_id))
        figures.update(loop_blocking(server))
    return figures


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="llmb-bench-storage-"))
    results = [run("sqlite", f"sqlite:///{root / 'sqlite' / 'llm-backend.db'}", root / "sqlite")]
    cluster = PostgresCluster(durable=True).start()
    try:
        results.append(run("postgresql", cluster.create_database(), root / "postgresql"))
    finally:
        cluster.stop()
    for figures in results:
        print(" ".join(f"{key}={value}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
