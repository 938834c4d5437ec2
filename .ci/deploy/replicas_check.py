"""The replicas' runtime checks of `make deploy-check`, driven with the official OpenAI SDK
(default settings, retries included: that is what clients of the Service run).

    python replicas_check.py crosswise URL_A URL_B --key K
        A chat stored through one replica is listed and read through the other, both ways.
    python replicas_check.py under-load SERVICE_URL --key K --disrupt "podman kill ..." [--graceful]
        Clients stream and don't through the Service; after a few seconds the command runs
        (it kills or stops a replica). No request that had not started streaming may fail
        (with --graceful: no request at all); every stored answer is readable afterwards.
    python replicas_check.py takeover URL_DOOMED URL_OTHER --key K --disrupt "podman kill ..."
        Through the first replica: vector store files to index and a long background
        response; the command kills that replica mid-work. Through the other: it takes over
        the files still in progress and completes them, fails the response once its lease
        ran out, and streams it again to its response.failed.

Exits 1 with the reason when a check fails; prints the figures either way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field

import openai

MODEL = "smollm2"


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, timeout=120)


def crosswise(first: str, second: str, key: str) -> str | None:
    run = uuid.uuid4().hex
    for writer, reader in ((first, second), (second, first)):
        stored = client(writer, key).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Name a colour."}], max_tokens=8,
            store=True, metadata={"ci_run": run},
        )
        listed = client(reader, key).chat.completions.list(metadata={"ci_run": run}, limit=10)
        if stored.id not in [completion.id for completion in listed.data]:
            return f"{stored.id}, stored through {writer}, is not listed through {reader}"
        read = client(reader, key).chat.completions.retrieve(stored.id)
        if read.choices[0].message.content != stored.choices[0].message.content:
            return f"{stored.id} reads differently through {reader}"
        messages = client(reader, key).chat.completions.messages.list(stored.id)
        if [m.content for m in messages.data] != ["Name a colour."]:
            return f"{stored.id}'s messages through {reader}: {[m.content for m in messages.data]}"
    print(json.dumps({"crosswise": "ok", "run": run}))
    return None


@dataclass
class Outcome:
    streamed: bool
    began: float
    ended: float = 0.0
    started_streaming: bool = False
    id: str | None = None
    retries: int = 0
    error: str | None = None


@dataclass
class Load:
    sdk: openai.OpenAI
    run: str
    stop: threading.Event = field(default_factory=threading.Event)
    outcomes: list[Outcome] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def worker(self, number: int) -> None:
        turn = 0
        while not self.stop.is_set():
            streamed = (number + turn) % 2 == 1
            turn += 1
            outcome = Outcome(streamed=streamed, began=time.monotonic())
            try:
                self.request(outcome, f"Say something about the number {number * 100 + turn}.")
            except openai.OpenAIError as error:
                outcome.error = f"{type(error).__name__}: {error}"[:300]
            outcome.ended = time.monotonic()
            with self.lock:
                self.outcomes.append(outcome)

    def request(self, outcome: Outcome, prompt: str) -> None:
        raw = self.sdk.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], max_tokens=24,
            store=True, metadata={"ci_run": self.run}, stream=outcome.streamed,
        )
        outcome.retries = raw.retries_taken
        answer = raw.parse()
        if not outcome.streamed:
            outcome.id = answer.id
            return
        for chunk in answer:
            outcome.started_streaming = True
            outcome.id = chunk.id


def under_load(service: str, key: str, disrupt: str, graceful: bool, clients: int, before: float, after: float) -> str | None:
    load = Load(client(service, key), uuid.uuid4().hex)
    threads = [threading.Thread(target=load.worker, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(before)
    disrupted_at = time.monotonic()
    subprocess.run(disrupt, shell=True, check=True, capture_output=True)
    time.sleep(after)
    load.stop.set()
    for thread in threads:
        thread.join()

    outcomes = load.outcomes
    failed = [o for o in outcomes if o.error]
    lost = [o for o in failed if graceful or not o.started_streaming]
    in_flight = [o for o in outcomes if o.began < disrupted_at < o.ended]
    figures = {
        "requests": len(outcomes),
        "streamed": sum(o.streamed for o in outcomes),
        "in_flight_at_disruption": len(in_flight),
        "retried_by_the_sdk": sum(o.retries > 0 for o in outcomes),
        "failed_after_streaming_began": len(failed) - len(lost),
        "lost": len(lost),
        "answered_after_disruption": sum(o.ended > disrupted_at and not o.error for o in outcomes),
        "errors": sorted({f"{o.error} (streaming {'began' if o.started_streaming else 'not begun'}, "
                          f"{o.began - disrupted_at:+.2f}..{o.ended - disrupted_at:+.2f} s)" for o in failed})[:4],
    }
    print(json.dumps(figures))
    if lost:
        return f"{len(lost)} requests lost, e.g. {lost[0].error}"
    if not in_flight:
        return "nothing was in flight when the replica went: the check proved nothing"
    if not figures["answered_after_disruption"]:
        return "no request was answered after the disruption"

    # What the clients were given is stored, and any replica reads it.
    reader = client(service, key)
    for outcome in outcomes:
        if outcome.id and not outcome.error:
            try:
                reader.chat.completions.retrieve(outcome.id)
            except openai.NotFoundError:
                return f"{outcome.id} was answered but is not stored"
    return None


# Text of about 2 500 tokens: a file takes seconds to embed, several files longer.
WORDS = ["river", "mountain", "orbit", "lantern", "harvest", "copper", "violin", "glacier", "meadow", "thunder"]
LONG_TEXT = "\n".join(
    " ".join(WORDS[(line * 7 + i * 3) % len(WORDS)] + str(line * 31 + i) for i in range(12)) for line in range(75)
)
STATIC = {"type": "static", "static": {"max_chunk_size_tokens": 400, "chunk_overlap_tokens": 0}}


def takeover(doomed: str, other: str, key: str, disrupt: str, files: int, timeout: float) -> str | None:
    first, second = client(doomed, key), client(other, key)
    store = first.vector_stores.create(name=f"takeover-{uuid.uuid4().hex[:8]}")
    ids = [first.files.create(file=(f"long{n}.txt", f"{n} {LONG_TEXT}".encode()), purpose="assistants").id
           for n in range(files)]
    first.vector_stores.file_batches.create(store.id, file_ids=ids, chunking_strategy=STATIC)
    running = first.responses.create(model=MODEL, input="Write a very long story.", background=True,
                                     max_output_tokens=2000)
    deadline = time.monotonic() + 60
    while first.responses.retrieve(running.id).status != "in_progress":
        if time.monotonic() > deadline:
            return f"{running.id} did not start within 60 s"
        time.sleep(0.2)
    subprocess.run(disrupt, shell=True, check=True, capture_output=True)
    killed_at = time.monotonic()
    left = second.vector_stores.retrieve(store.id).file_counts.in_progress
    if not left:
        return "the files were all indexed before the kill: the check proved nothing"
    if second.responses.retrieve(running.id).status != "in_progress":
        return "the background response ended before the kill: the check proved nothing"
    figures: dict = {"files": files, "in_progress_at_kill": left}
    deadline = killed_at + timeout
    while "files_completed_s" not in figures or "response_failed_s" not in figures:
        if time.monotonic() > deadline:
            return f"not done {timeout:g} s after the kill: {json.dumps(figures)}"
        counts = second.vector_stores.retrieve(store.id).file_counts
        if counts.failed or counts.cancelled:
            return f"files failed: {counts}"
        if counts.completed == files and "files_completed_s" not in figures:
            figures["files_completed_s"] = round(time.monotonic() - killed_at, 1)
        response = second.responses.retrieve(running.id)
        if response.status not in ("queued", "in_progress") and "response_failed_s" not in figures:
            if response.status != "failed":
                return f"{running.id} of the killed replica ended {response.status}"
            figures["response_failed_s"] = round(time.monotonic() - killed_at, 1)
        time.sleep(0.5)
    replayed = list(second.responses.retrieve(running.id, stream=True))
    if not replayed or replayed[-1].type != "response.failed":
        return f"its stream, replayed by the other replica, ends with {replayed[-1].type if replayed else 'nothing'}"
    if [event.sequence_number for event in replayed] != list(range(len(replayed))):
        return "its replayed stream has gaps"
    figures["replayed_events"] = len(replayed)
    print(json.dumps(figures))
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    cross = commands.add_parser("crosswise")
    cross.add_argument("first")
    cross.add_argument("second")
    load = commands.add_parser("under-load")
    load.add_argument("service")
    load.add_argument("--disrupt", required=True, help="shell command that kills or stops a replica")
    load.add_argument("--graceful", action="store_true", help="the disruption drains: nothing may fail")
    load.add_argument("--clients", type=int, default=8)
    load.add_argument("--before", type=float, default=4.0, help="seconds of load before the disruption")
    load.add_argument("--after", type=float, default=8.0, help="seconds of load after it")
    take = commands.add_parser("takeover")
    take.add_argument("doomed")
    take.add_argument("other")
    take.add_argument("--disrupt", required=True, help="shell command that kills the first replica")
    take.add_argument("--files", type=int, default=4)
    take.add_argument("--timeout", type=float, default=180.0, help="seconds the other replica has (leases: 30 s)")
    for command in (cross, load, take):
        command.add_argument("--key", required=True)
    options = parser.parse_args(argv)
    if options.command == "crosswise":
        failure = crosswise(options.first, options.second, options.key)
    elif options.command == "takeover":
        failure = takeover(options.doomed, options.other, options.key, options.disrupt, options.files, options.timeout)
    else:
        failure = under_load(options.service, options.key, options.disrupt, options.graceful,
                             options.clients, options.before, options.after)
    if failure:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
