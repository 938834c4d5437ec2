"""``GET /v1/responses/{id}?stream=true``: a background response's events streamed again,
live while it runs and from the kept events once it ended, with ``starting_after``."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import MODEL

TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def dumps(events) -> list[dict]:
    return [event.model_dump() for event in events]


def test_a_finished_background_response_streams_again_the_same_events(client):
    original = list(
        client.responses.create(model=MODEL, input="Say hello.", background=True, stream=True, max_output_tokens=16)
    )
    assert original[-1].type in TERMINAL
    again = list(client.responses.retrieve(original[-1].response.id, stream=True))
    assert dumps(again) == dumps(original)


def test_starting_after_streams_only_the_later_events(client):
    original = list(
        client.responses.create(model=MODEL, input="Count to five.", background=True, stream=True, max_output_tokens=16)
    )
    later = list(client.responses.retrieve(original[-1].response.id, stream=True, starting_after=3))
    assert dumps(later) == dumps(original[4:])


def test_a_running_background_response_is_followed_live_to_its_end(client):
    queued = client.responses.create(model=MODEL, input="Write a story.", background=True, max_output_tokens=32)
    events = list(client.responses.retrieve(queued.id, stream=True))
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type in TERMINAL
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    stored = client.responses.retrieve(queued.id)
    assert stored.status == events[-1].response.status and stored.output_text == text


def test_a_response_not_made_in_the_background_is_not_streamed_again(client):
    response = client.responses.create(model=MODEL, input="Hi", max_output_tokens=16)
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.retrieve(response.id, stream=True)
    assert refused.value.body["param"] == "stream"
