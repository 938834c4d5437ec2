"""The replicas' runtime checks of `make deploy-check`, driven with the official OpenAI SDK
(default settings, retries included: that is what clients of the Service run).

    python replicas_check.py crosswise URL_A URL_B --key K
        A chat stored through one replica is listed and read through the other, both ways.
    python replicas_check.py under-load SERVICE_URL --key K --disrupt "podman kill ..." [--graceful]
        Clients stream and don't through the Service; after a few seconds the command runs
        (it kills or stops a replica). No request that had not started streaming may fail
        (with --graceful: no request at all); every stored answer is readable afterwards.

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
    for command in (cross, load):
        command.add_argument("--key", required=True)
    options = parser.parse_args(argv)
    if options.command == "crosswise":
        failure = crosswise(options.first, options.second, options.key)
    else:
        failure = under_load(options.service, options.key, options.disrupt, options.graceful,
                             options.clients, options.before, options.after)
    if failure:
        print(failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
