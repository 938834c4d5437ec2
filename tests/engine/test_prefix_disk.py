"""The prefix every session shares, on disk (issue #49 item 3): a prompt's first part written
once computed; a restarted engine (a new Engine on the same folder, as a restarted worker or
another replica is) starts a new session from it, with the same greedy answer; never another
tenant's; within its bytes; a damaged file ignored. On ``synthetic://test-tiny`` (1/26 of the
default model's CPU a prompt token): the same vocabulary and template, so the same prompts and
parts; where an answer's sameness is the point, its random weights' flatter logits turn a bit
that the file changed into another greedy token more readily than SmolLM2's."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama.engine.batching import Engine
from llm_backend.backends.llama.engine.prefix_disk import DISK_MIN, SUFFIX
from tests.support.engines import recording_engine, run
from tests.support.models import tiny_gguf

# An agent's instructions: longer than DISK_MIN tokens, the same in every session.
INSTRUCTIONS = (
    "You are a coding agent working in a terminal. Read files before you change them, keep "
    "changes small, run the tests after each change and report what you did in one sentence. "
    "Never print secrets; never run commands that touch the network. "
) * 8


def engine_on(folder, disk_mb: int = 64) -> Engine:
    # Cells of its own per sequence (``kv_shared: false``): reuse changes no bit of an answer
    # there (test_prefixes.py). One thread: in-process beside the other test processes.
    config = {
        "path": str(tiny_gguf()), "n_ctx": 1024, "parallel": 2, "n_threads": 1, "n_threads_batch": 1,
        "prefix_cache_mb": 64, "kv_shared": False, "prefix_disk_dir": str(folder), "prefix_disk_mb": disk_mb,
    }
    return recording_engine(config)


@pytest.fixture
def engines(tmp_path):
    made = []

    def make(**kwargs) -> Engine:
        made.append(engine_on(tmp_path, **kwargs))
        return made[-1]

    yield make
    for engine in made:
        engine.close()


def session(question: str, tenant: str = "a", instructions: str = INSTRUCTIONS) -> dict:
    messages = [{"role": "system", "content": instructions}, {"role": "user", "content": question}]
    return {"messages": messages, "temperature": 0, "max_tokens": 12, "tenant": tenant}


def answer(engine: Engine, rid: str, params: dict) -> dict:
    engine.submit(rid, "chat", params)
    request = engine.running[rid]
    run(engine)
    reused, prompt = request.reused, len(request.prompt)  # after run: a file is read by a thread
    usage = next(e for e in engine.recorder.events if e["id"] == rid and e["event"] == "usage")
    return {"text": engine.recorder.text(rid), "reused": reused, "prompt": prompt, "usage": usage}


def files(engine: Engine) -> list:
    return sorted(engine.disk.folder.glob("*" + SUFFIX))


def first_session(engine: Engine):
    """The first session's turn: its instructions written to disk; the file."""
    answer(engine, "first", session("Where are the tests?"))
    engine.disk.flush()
    (path,) = files(engine)
    return path


def test_a_restarted_engine_starts_a_new_session_from_the_prefix_on_disk_with_the_same_answer(engines):
    first_session(engines())
    restarted = engines()
    new = answer(restarted, "new", session("How do I run one test?"))
    assert new["reused"] >= DISK_MIN and new["reused"] >= 0.8 * new["prompt"]
    assert new["usage"]["cached_tokens"] == new["reused"]
    assert restarted.totals["disk_tokens"] == new["reused"] and restarted.disk.restores == 1
    # The same prompt computed from nothing on the same engine: the same greedy answer.
    restarted.disk, disk = None, restarted.disk
    restarted.forget()
    restarted.host.clear()
    restarted.free_seqs = list(range(restarted.parallel))
    cold = answer(restarted, "cold", session("How do I run one test?"))
    restarted.disk = disk
    assert cold["reused"] == 0 and cold["text"] == new["text"]


def test_a_file_another_replica_writes_is_found_by_a_running_engine(engines):
    running = engines()
    assert answer(running, "warm", session("Hello", instructions="Short.")) is not None
    first_session(engines())
    assert answer(running, "new", session("How do I run one test?"))["reused"] >= DISK_MIN


def test_another_tenant_takes_nothing_from_the_disk(engines):
    first_session(engines())
    other = answer(engines(), "other", session("How do I run one test?", tenant="b"))
    assert other["reused"] == 0


def test_the_disk_keeps_within_its_bytes(engines):
    engine = engines(disk_mb=4)  # about two of these prefixes (~1.7 MB each)
    for number in range(5):
        answer(engine, f"s{number}", session("Hi", instructions=f"Project {number}. " + INSTRUCTIONS))
        engine.disk.flush()
    kept = files(engine)
    assert 0 < len(kept) < 5
    assert sum(path.stat().st_size for path in kept) <= 4 << 20
    # The most recent is kept, the first went.
    restarted = engines(disk_mb=4)
    assert answer(restarted, "again4", session("Bye", instructions="Project 4. " + INSTRUCTIONS))["reused"] >= DISK_MIN
    assert answer(restarted, "again0", session("Bye", instructions="Project 0. " + INSTRUCTIONS))["reused"] == 0


@pytest.mark.parametrize("damage", ["flipped", "truncated", "garbage"])
def test_a_damaged_file_is_ignored_and_removed(engines, damage):
    first_session(engines())
    path = first_session(engines())
    data = bytearray(path.read_bytes())
    if damage == "flipped":
        data[-1000] ^= 0xFF
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data = b"not a prefix file"
    path.write_bytes(bytes(data))
    restarted = engines()
    new = answer(restarted, "new", session("How do I run one test?"))
    assert new["reused"] == 0 and new["text"]
    assert restarted.disk.rejected == 1
    # Removed, and written whole again by the prefill that recomputed it.
    restarted.disk.flush()
    assert answer(engines(), "again", session("And all of them?"))["reused"] >= DISK_MIN


def test_a_later_turn_continuing_what_memory_holds_writes_nothing_more(engines):
    engine = engines()
    path = first_session(engine)
    first = session("Where are the tests?")
    later = dict(first, messages=first["messages"] + [
        {"role": "assistant", "content": engine.recorder.text("first")}, {"role": "user", "content": "And the fixtures?"},
    ])
    assert answer(engine, "later", later)["reused"] >= DISK_MIN
    engine.disk.flush()
    assert files(engine) == [path]


def test_an_engine_whose_folder_cannot_be_made_runs_without_the_disk(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    engine = engine_on(blocked / "prefixes")
    try:
        assert engine.disk is None
        assert answer(engine, "plain", session("Where are the tests?"))["text"]
    finally:
        engine.close()


def test_a_prompt_sharing_part_of_a_file_takes_that_part_and_saves_nothing_of_it_to_memory(engines):
    first_session(engines())
    restarted = engines()
    # The same instructions but their last ~80 tokens: the file's last 80 are of no use.
    params = session("How do I run one test?", instructions=INSTRUCTIONS[:-400] + "Answer in French.")
    before = restarted.host.used
    taken = answer(restarted, "part", params)
    assert 128 <= taken["reused"] < taken["prompt"] - 64
    assert restarted.totals["disk_tokens"] == taken["reused"]
    assert restarted.host.used == before


def test_the_other_streams_decode_while_a_file_is_read(engines, monkeypatch):
    """A slow disk (injected: a read made to take 0.6 s, which this machine's page cache never
    does) holds up only the session that waits for the file: a stream beside it gets its
    tokens meanwhile, and the session then starts from the file."""
    import time

    from llm_backend.backends.llama.engine import prefix_disk

    first_session(engines())
    restarted = engines()
    read = prefix_disk.DiskPrefixes.read

    def slow(self, entry):
        time.sleep(0.6)
        return read(self, entry)

    monkeypatch.setattr(prefix_disk.DiskPrefixes, "read", slow)
    restarted.submit("stream", "chat", {"messages": [{"role": "user", "content": "Count to twenty."}], "temperature": 0,
                                        "max_tokens": 40, "tenant": "b"})
    restarted.step()  # its prompt computed: it decodes from the next step on
    restarted.submit("new", "chat", session("How do I run one test?"))
    waiting = restarted.running["new"]
    assert waiting.reading is not None

    def streamed() -> int:
        return sum(1 for e in restarted.recorder.events if e["id"] == "stream" and e["event"] == "delta")

    started, before = time.perf_counter(), streamed()
    while waiting.reading is not None:
        restarted.step()
    assert time.perf_counter() - started >= 0.5
    assert streamed() - before >= 5  # the stream's tokens kept coming while the file was read
    run(restarted)
    assert waiting.reused >= DISK_MIN and restarted.disk.restores == 1


def _hostile(folder, kind: str) -> None:
    """A file under the prefixes folder that is not one of ours, named as ours."""
    import json
    import os
    import struct

    from llm_backend.backends.llama.engine.prefix_disk import MAGIC

    path = folder / ("0" * 40 + SUFFIX)
    if kind == "deep header":  # json.loads recursed past Python's limit: a 500 on every request
        header = b"[" * 100_000
        path.write_bytes(MAGIC + struct.pack("<I", len(header)) + header)
    elif kind == "wrong types":
        header = json.dumps({"tenant": 1, "shared": "all", "n_tokens": 10**12, "state_size": -1, "state_xxh3": []}).encode()
        path.write_bytes(MAGIC + struct.pack("<I", len(header)) + header)
    elif kind == "directory":  # its unlink raised: the scan, and every later write, failed
        (path / "inside").mkdir(parents=True)
    elif kind == "fifo":  # its open waited for a writer: every request to the model hung
        os.mkfifo(path)
    elif kind == "link":  # to a FIFO elsewhere: followed, it hung as the FIFO does
        os.mkfifo(folder.parent / "elsewhere")
        path.symlink_to(folder.parent / "elsewhere")


@pytest.mark.parametrize("kind", ["deep header", "wrong types", "directory", "fifo", "link"])
def test_a_hostile_file_in_the_folder_neither_fails_nor_hangs_a_request_and_files_are_still_written(engines, kind):
    import time

    engine = engines()
    _hostile(engine.disk.folder, kind)
    started = time.perf_counter()
    first = answer(engine, "first", session("Where are the tests?"))
    assert first["text"] and time.perf_counter() - started < 60
    engine.disk.flush()
    assert engine.disk.written == 1  # the prefix still written beside it
    restarted = engines()
    assert answer(restarted, "new", session("How do I run one test?"))["reused"] >= DISK_MIN


def test_a_file_of_the_previous_format_is_removed_unread(engines):
    """Format 2 counted a request's tools as shared (issue #56): its files are not trusted."""
    from llm_backend.backends.llama.engine.prefix_disk import MAGIC

    path = first_session(engines())
    data = path.read_bytes()
    path.write_bytes(b"LLBPREFIX2\n" + data[len(MAGIC):])
    restarted = engines()
    assert answer(restarted, "new", session("How do I run one test?"))["reused"] == 0
    assert restarted.disk.rejected == 1
    restarted.disk.flush()
    assert path.read_bytes().startswith(MAGIC)  # written again, in this format, by the prefill


def test_a_dead_writers_temporary_file_is_counted_then_removed(engines):
    import os
    import time

    engine = engines()
    fresh, orphan = engine.disk.folder / ".a.1.tmp", engine.disk.folder / ".b.2.tmp"
    fresh.write_bytes(b"x" * 4096)
    orphan.write_bytes(b"y" * 8192)
    long_ago = time.time() - 3600
    os.utime(orphan, (long_ago, long_ago))
    answer(engine, "first", session("Where are the tests?"))
    engine.disk.flush()
    assert not orphan.exists() and fresh.exists()
    (path,) = files(engine)
    assert engine.disk.stats()["disk_prefix_bytes"] == path.stat().st_size + 4096
