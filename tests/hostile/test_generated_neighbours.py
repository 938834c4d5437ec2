"""Hostile lists the engine pays for at every token, generated from both documents (issue
#56): another tenant's request keeps its time beside them.

``test_generated.py`` grows each operation's body at the size limit with the smallest valid
item (a stop string ``""``), one generated token, and watches ``/health`` and memory: a cost
the engine pays per token for each item (200 000 ``stop_sequences`` of a Messages request,
looked for at every token on the engine's thread) showed in neither. So here every
operation of either document that generates on the local model (its body names a model and
a bound on the tokens generated) gets each of its lists of strings (read from the document
with the generator's own ``Builder``, over several draws of its branches) filled at the size
limit with distinct strings the model never writes, and asks for ``TOKENS`` tokens, streamed:
sent again and again by one tenant while another tenant's 20-token chat is timed. Each
answer is an answer (under 500), and the chat keeps within twice its time alone plus a
second (``tests/support/neighbours.py``); a case over it runs once more (the machine's other
work delays a run now and then; the request's cost delays every run). A Messages body is
sent as a Message Batch's line too: lines run on the model's low-priority engine, so the
neighbour timed is another tenant's line (its batch of one 20-token request).

Before the Messages lane bounded its stop sequences (2 shared cores): the neighbour's chat
took 7.7 and 18.3 s beside the Messages body (0.17 s alone), its batch line 7.9 s beside the
hostile line (0.27 s alone); since, 0.19 and 0.24 s.
"""

from __future__ import annotations

import functools
import json
import random
import threading
import time
from collections.abc import Callable

import anthropic
import httpx
import pytest

from tests.conftest import MODEL
from tests.hostile.test_generated import ANTHROPIC, DOCUMENT, OPERATIONS, SIZE, url_of
from tests.support.clients import keyed_server
from tests.support.hostile_bodies import Builder, Slot
from tests.support.neighbours import PROMPT, alone_seconds, beside, chat_seconds, within_bound
from tests.support.neighbours import TOKENS as TOKENS_NEIGHBOUR

HOSTILE, NEIGHBOUR = "sk-neighbours-hostile-7e4b", "sk-neighbours-other-1d9a"
GENERATION_BOUNDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
TOKENS = 64
DRAWS = 16  # draws of each operation's branches: a list behind a oneOf shows in some
MESSAGE_BATCH_ROOM = 4096  # what the batch's wrapping takes of the size limit


def document_of(operation_id: str) -> dict:
    return ANTHROPIC if OPERATIONS[operation_id][4] is ANTHROPIC else DOCUMENT


@functools.cache
def string_lists(operation_id: str) -> dict[str, tuple[int, Slot]]:
    """Each list of strings the operation's body may hold (the draw that shows it, the slot),
    when the operation generates on a model; else none."""
    content = OPERATIONS[operation_id][3].get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return {}
    found: dict[str, tuple[int, Slot]] = {}
    for draw in range(DRAWS):
        builder = Builder(document_of(operation_id), random.Random(draw), MODEL)
        schema = builder.parts(content["application/json"]["schema"])
        properties = schema.get("properties", {})
        if "model" not in properties or not GENERATION_BOUNDS & properties.keys():
            return {}
        for slot in builder.slots(schema):
            items = builder.parts(slot.schema.get("items", {})) if slot.kind == "array" else {}
            if items.get("type") == "string" and not {"enum", "const", "format"} & items.keys():
                found.setdefault(str(slot), (draw, slot))
    return found


CASES = [(operation_id, name) for operation_id in sorted(OPERATIONS) for name in sorted(string_lists(operation_id))]


def hostile_body(operation_id: str, name: str, size: int = SIZE) -> dict:
    """The operation's smallest body with the list ``name`` holding distinct strings the
    model never writes (nor their beginnings) up to ``size`` bytes, ``TOKENS`` to generate."""
    draw, slot = string_lists(operation_id)[name]
    builder = Builder(document_of(operation_id), random.Random(draw), MODEL)
    schema = builder.parts(OPERATIONS[operation_id][3]["requestBody"]["content"]["application/json"]["schema"])
    body = json.loads(builder.filled(schema, slot, 4096))
    for bound in GENERATION_BOUNDS:
        if bound in body:  # the smallest body has the operation's bounds (their least)
            body[bound] = TOKENS
    node = body
    for key, _ in slot.chain[:-1]:
        node = node[key]
    each = len(encoded("\u2603999999")) + 1  # the longest item and its comma
    count = max(size - len(encoded(body)), 0) // each
    node[slot.chain[-1][0]] = [f"\u2603{index}" for index in range(count)]
    return body


def encoded(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    env = {"LLM_BACKEND_SPEECH_MODEL": "", "LLM_BACKEND_BATCH_NICE": "2"}
    with keyed_server(tmp_path_factory.mktemp("neighbours"), [HOSTILE, NEIGHBOUR], env=env) as server:
        yield server


@pytest.fixture(scope="module")
def alone(live) -> float:
    return alone_seconds(live, NEIGHBOUR)


def sender(method: str, url: str, content: bytes):
    """The request as a stream: under way at its first line (or once it is answered)."""
    headers = {"content-type": "application/json", "authorization": f"Bearer {HOSTILE}"}

    def send(client: httpx.Client, under_way: threading.Event) -> int:
        with client.stream(method, url, content=content, headers=headers) as answer:
            for _ in answer.iter_lines():
                under_way.set()
            return answer.status_code

    return send


def assert_keeps_its_time(alone: float, replay: str, run: Callable[[], float]) -> None:
    """``run()``'s seconds of the neighbour's chat within the bound, in one of two runs."""
    for attempt in range(2):
        seconds = run()
        print(f"\n{replay}: the neighbour's 20-token request took {seconds:.2f} s beside it, {alone:.2f} s alone, run {attempt + 1}")
        if within_bound(alone, seconds):
            return
    pytest.fail(f"{replay}: the other tenant's 20-token request took {seconds:.2f} s beside it, {alone:.2f} s alone")


@pytest.mark.parametrize(("operation_id", "name"), CASES)
def test_another_tenants_chat_keeps_its_time_beside_a_list_of_strings_at_the_limit(live, alone, operation_id, name):
    content = encoded({**hostile_body(operation_id, name), "stream": True})
    method, url = url_of(live, operation_id)
    replay = f"{operation_id} ({name}: {len(content)} bytes)"

    def run() -> float:
        with beside(sender(method, url, content)) as statuses:
            seconds = chat_seconds(live, NEIGHBOUR)
        assert statuses and max(statuses) < 500, f"{replay}: {statuses}"
        return seconds

    assert_keeps_its_time(alone, replay, run)


MESSAGE_LISTS = sorted(string_lists("messagesCreate"))


def ended(client: anthropic.Anthropic, batch_id: str) -> None:
    deadline = time.monotonic() + 600
    while client.messages.batches.retrieve(batch_id).processing_status != "ended":
        assert time.monotonic() < deadline, f"{batch_id} did not end"
        time.sleep(0.1)


def batch_seconds(live) -> float:
    """The seconds of the neighbour's Message Batch of one 20-token request, created to ended."""
    client = anthropic.Anthropic(base_url=live.base_url, api_key=NEIGHBOUR, max_retries=0, timeout=300)
    params = {"model": MODEL, "max_tokens": TOKENS_NEIGHBOUR, "temperature": 0, "messages": [{"role": "user", "content": PROMPT}]}
    started = time.perf_counter()
    batch = client.messages.batches.create(requests=[{"custom_id": "neighbour", "params": params}])
    ended(client, batch.id)
    return time.perf_counter() - started


@pytest.mark.parametrize("name", MESSAGE_LISTS)
def test_another_tenants_batch_line_keeps_its_time_beside_a_message_batch_line_with_a_list_at_the_limit(live, name):
    """Lines run on the model's low-priority engine: their neighbours are other lines."""
    alone = min(batch_seconds(live) for _ in range(3))
    client = anthropic.Anthropic(base_url=live.base_url, api_key=HOSTILE, max_retries=0, timeout=300)
    params = hostile_body("messagesCreate", name, SIZE - MESSAGE_BATCH_ROOM)
    replay = f"a Message Batch line ({name})"

    def run() -> float:
        batch = client.messages.batches.create(requests=[{"custom_id": "hostile", "params": params}])
        time.sleep(1)  # its line read and under way
        seconds = batch_seconds(live)
        ended(client, batch.id)
        [entry] = list(client.messages.batches.results(batch.id))
        assert entry.result.type in ("succeeded", "errored"), f"{replay}: {entry.result}"
        if entry.result.type == "errored":  # a client's mistake, in Anthropic's shape
            assert entry.result.error.error.type == "invalid_request_error", f"{replay}: {entry.result}"
        return seconds

    assert_keeps_its_time(alone, replay, run)
