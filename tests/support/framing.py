"""How a server-sent event stream is framed, as bytes on the wire: compared with the
framing of streams recorded from OpenAI (tests/fixtures/openai_sse_framing.json)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

RECORDED = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "openai_sse_framing.json").read_text())


def raw_stream(url: str, body: dict) -> bytes:
    """The body of a streamed POST, byte for byte (no decoding, no line splitting)."""
    with httpx.stream("POST", url, json=body, timeout=120) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        return b"".join(response.iter_raw())


def lines(raw: bytes) -> list[str]:
    """The stream's lines split on ``\\n`` alone, each ``data:`` payload reduced to its
    ``type`` (or ``object``) in braces, as the recorded framings are kept."""
    reduced = []
    for line in raw.decode().split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            payload = json.loads(line[len("data: "):])
            line = "data: {" + (payload.get("type") or payload["object"]) + "}"
        reduced.append(line)
    return reduced


def form(reduced: list[str]) -> dict:
    """What framing a stream has, whatever its length and event names: the shape of each
    event (its fields in order), whether every ``event:`` names its payload's type, how it
    ends. Two streams framed alike have equal forms."""
    events = "\n".join(reduced).split("\n\n")
    assert events[-1] == "", "the stream does not end with a blank line"
    events = events[:-1]
    shapes = set()
    for event in events:
        fields = event.split("\n")
        shapes.add(tuple(field.split(":", 1)[0] for field in fields))
        if fields[0].startswith("event: "):
            assert fields[1] == "data: {" + fields[0][len("event: "):] + "}", f"event name and payload differ: {fields}"
    return {"shapes": shapes, "done": events[-1] == "data: [DONE]", "crlf": False}


def recorded_form(kind: str) -> dict:
    return form(RECORDED[kind]["lines"])


def naive_events(raw: bytes) -> list[dict]:
    """The events a hand-written client gets that splits the body on ``"\\n\\n"`` and reads
    the ``data: `` line of each part (the Open Responses compliance suite's parser does so)."""
    found = []
    for part in raw.decode().split("\n\n"):
        for line in part.split("\n"):
            if line.startswith("data: ") and line != "data: [DONE]":
                found.append(json.loads(line[len("data: "):]))
    return found
