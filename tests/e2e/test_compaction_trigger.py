"""A Response whose last input item is a ``compaction_trigger`` ("Compacts the current context.
Must be the final input item", the document) answers with one ``compaction`` item, the
summary of what came before it (``serving/responses/summary.py``): how Codex compacts with
OpenAI's own provider (``remote_compaction_v2``, over its Responses WebSocket; its own run is
in test_agent_clients.py). Before, a local model refused the item (400 ``unsupported_parameter``)
and Codex's turn failed "Error running remote compact task". On the session's server (SmolLM2,
greedy)."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL

TRIGGER = {"type": "compaction_trigger"}
HISTORY = [
    {"role": "user", "content": "My name is Ann and I live in Oslo."},
    {"role": "assistant", "content": "Nice to meet you, Ann."},
]


def test_a_trigger_answers_with_the_compaction_of_what_came_before(client):
    response = client.responses.create(model=MODEL, input=[*HISTORY, TRIGGER], temperature=0)
    assert response.status == "completed"
    [item] = response.output
    assert item.type == "compaction" and item.id.startswith("cmp_") and item.encrypted_content
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    # Later turns carry it, as they carry /responses/compact's.
    later = client.responses.create(model=MODEL, input=[item.model_dump(exclude_none=True), {"role": "user", "content": "Where do I live?"}],
                                    max_output_tokens=16, temperature=0)
    assert later.status in ("completed", "incomplete")
    assert [entry.type for entry in client.responses.input_items.list(response.id, order="asc").data] == ["message", "message"]


def test_a_streamed_trigger_sends_the_compaction_as_one_item_then_completes(client):
    with client.responses.create(model=MODEL, input=[*HISTORY, TRIGGER], temperature=0, stream=True, store=False) as stream:
        events = list(stream)
    kinds = [event.type for event in events if event.type != "keepalive"]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added", "response.output_item.done",
                     "response.completed"]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    done = events[-1].response
    assert [item.type for item in done.output] == ["compaction"]
    assert events[3].item.encrypted_content == done.output[0].encrypted_content


@pytest.mark.parametrize("body, param", [
    ({"input": [TRIGGER, *HISTORY]}, "input[0]"),
    ({"input": [*HISTORY, TRIGGER], "background": True}, "background"),
], ids=["not-last", "background"])
def test_a_trigger_that_cannot_be_honoured_is_refused_naming_why(client, body, param):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=MODEL, **body)
    assert refused.value.body["param"] == param
