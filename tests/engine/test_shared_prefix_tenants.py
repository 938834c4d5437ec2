"""What a shared system prompt shares across tenants (issue #56 item 1): its own text, never
the tools a template writes into the same block. Before, a fresh tenant guessing another's
tool description (a PIN in it) got one more cached token for each right digit, in memory and,
after a restart, from the prefix files on disk. On ``synthetic://test-tiny`` (SmolLM2's
vocabulary; test_prefix_disk.py's engine), whose ChatML template knows no tools, as the default
GGUF's does not: the convention format writes them into the system message."""

from __future__ import annotations

import pytest

from llm_backend.backends.llama.engine.batching import SHARE_MIN
from tests.engine.test_prefix_disk import answer, engine_on, files

SYSTEM = (
    "You are the support desk of a small bicycle shop. Answer in one short sentence, kindly. "
    "The shop opens at nine and closes at six, and repairs take two working days at most. "
) * 3
# What the victim's tool says, and what follows the secret: enough tokens that the guess is
# not cut off by the canonical chunking (prefixes.exact) before it.
SECRET = "Look up an order. The support PIN is 4821."
FILLER = " The order number is on the receipt; the customer must give it in full, with the name on the order." * 3


def request(description: str, tenant: str, question: str = "Where is my order?") -> dict:
    tool = {"type": "function", "function": {
        "name": "lookup_order", "description": description,
        "parameters": {"type": "object", "properties": {"number": {"type": "string"}}},
    }}
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    return {"messages": messages, "tools": [tool], "temperature": 0, "max_tokens": 2, "tenant": tenant, "shared_messages": 1}


def probe(engine, rid: str, digits: str) -> int:
    """A fresh tenant's cached tokens for a guess of the PIN's first digits."""
    guess = SECRET[: SECRET.index("4821")] + digits + " Another description entirely, the prober's own words." * 4
    return answer(engine, rid, request(guess, tenant=f"prober-{rid}"))["usage"]["cached_tokens"]


@pytest.fixture
def engines(tmp_path):
    made = []

    def make():
        made.append(engine_on(tmp_path))
        return made[-1]

    yield make
    for engine in made:
        engine.close()


def test_a_right_and_a_wrong_guess_of_another_tenants_tool_get_the_same_cached_tokens(engines):
    engine = engines()
    answer(engine, "victim", request(SECRET + FILLER, tenant="victim"))
    right, wrong = probe(engine, "right", "48"), probe(engine, "wrong", "47")
    assert right == wrong
    # The system prompt itself is still shared: that much is the operator's, and cached.
    assert right >= SHARE_MIN


def test_after_a_restart_the_prefix_on_disk_tells_a_guess_nothing_either(engines):
    first = engines()
    answer(first, "victim", request(SECRET + FILLER, tenant="victim"))
    first.disk.flush()
    assert len(files(first)) == 1
    restarted = engines()
    right = probe(restarted, "right", "48")
    restarted = engines()  # each guess on an engine that only has the file
    wrong = probe(restarted, "wrong", "47")
    assert right == wrong


def test_a_tenant_still_reuses_its_own_tools_past_the_shared_system_prompt(engines):
    engine = engines()
    first = answer(engine, "first", request(SECRET + FILLER, tenant="victim"))
    again = answer(engine, "again", request(SECRET + FILLER, tenant="victim", question="And my refund?"))
    stranger = probe(engine, "stranger", "48")
    assert again["usage"]["cached_tokens"] > stranger + 32  # its own tools, cached for itself alone
    assert first["text"] is not None
