"""Owners of the objects upstreams keep (storage/forwarded_objects.py), on SQLite and
PostgreSQL: the first owner of an id keeps it, even when replicas race to claim it."""

from __future__ import annotations

import asyncio
import threading

from llm_backend.storage import Database


def test_an_id_is_its_first_claimers(database):
    objects = database.forwarded_objects
    asyncio.run(objects.claim("alice", {"file-1": "file", "batch_1": "batch"}))
    asyncio.run(objects.claim("bob", {"file-1": "file", "file-2": "file"}))
    owners = asyncio.run(objects.owners(["file-1", "file-2", "batch_1", "file-none"]))
    assert owners == {"file-1": ("alice", "file"), "file-2": ("bob", "file"), "batch_1": ("alice", "batch")}


def test_only_its_owner_forgets_an_object(database):
    objects = database.forwarded_objects
    asyncio.run(objects.claim("alice", {"vs_1": "vector_store"}))
    asyncio.run(objects.forget("bob", "vs_1"))
    assert asyncio.run(objects.owners(["vs_1"])) == {"vs_1": ("alice", "vector_store")}
    asyncio.run(objects.forget("alice", "vs_1"))
    assert asyncio.run(objects.owners(["vs_1"])) == {}


def test_an_id_no_column_can_hold_is_nobodys(database):
    objects = database.forwarded_objects
    unholdable = ["file-\x00nul", "x" * 300]
    asyncio.run(objects.claim("alice", dict.fromkeys(unholdable, "file")))
    assert asyncio.run(objects.owners(unholdable)) == {}
    asyncio.run(objects.forget("alice", "file-\x00nul"))


def test_many_ids_are_looked_up_at_once(database):
    objects = database.forwarded_objects
    ids = {f"file-{index}": "file" for index in range(1200)}
    asyncio.run(objects.claim("alice", ids))
    assert len(asyncio.run(objects.owners(list(ids)))) == 1200


def test_replicas_claiming_one_id_together_agree_on_its_owner(database):
    """Eight processes' worth of claims of the same ids at once: each id ends with one owner."""
    replicas = [Database(database.url) for _ in range(8)]
    start = threading.Barrier(len(replicas))
    ids = {f"file-race-{index}": "file" for index in range(50)}
    failures: list[BaseException] = []

    def claim(position: int, replica: Database) -> None:
        start.wait()
        try:
            asyncio.run(replica.forwarded_objects.claim(f"tenant-{position}", ids))
        except BaseException as exc:  # reported below: a claim never fails on a taken id
            failures.append(exc)

    threads = [threading.Thread(target=claim, args=pair) for pair in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen = [asyncio.run(replica.forwarded_objects.owners(list(ids))) for replica in replicas]
    for replica in replicas:
        replica.dispose()
    assert not failures, failures
    assert all(view == seen[0] for view in seen) and len(seen[0]) == len(ids)
