"""A Realtime session's requests held to its project's rules as HTTP requests are (issue
#40's control plane, docs/ADMIN.md): each response and each transcribed turn admitted by
the project's per-model rate limits, and the hosted tools it turned off (``mcp``) refused in
a session, a response and a client secret, naming the tool. They used to be held to the
per-key limits and the spend quota only.

One keyed server for the file; projects and their keys made with the SDK's admin client.
Limits are per day, so that no minute boundary between two requests lets the second by
(the audio megabytes are a minute's: that test waits for a minute's start if need be)."""

from __future__ import annotations

import time

import openai
import pytest

from tests.conftest import MODEL
from tests.support.admin import same_minute
from tests.support.audio import librivox
from tests.support.clients import admin_sdk, keyed_server, sdk
from tests.support.realtime import events_until, next_error, pcm24k, send_audio, silence

ADMIN = "sk-realtime-rules-admin"
TEXT_ONLY = {"type": "realtime", "output_modalities": ["text"], "max_output_tokens": 8, "audio": {"input": {"turn_detection": None}}}
MCP_TOOL = {"type": "mcp", "server_label": "docs", "server_url": "https://mcp.example.com/mcp", "require_approval": "never"}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with keyed_server(tmp_path_factory.mktemp("rules"), [], [ADMIN]) as server:
        yield server


@pytest.fixture(scope="module")
def org(live):
    return admin_sdk(live, ADMIN).admin.organization


def project_key(org, name: str) -> tuple[str, str]:
    project = org.projects.create(name=name)
    return project.id, org.projects.service_accounts.create(project.id, name="bot").api_key.value


def say(connection, text: str) -> None:
    connection.conversation.item.create(item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]})


def test_each_response_is_admitted_by_its_projects_limits_on_the_model(live, org):
    project, key = project_key(org, "realtime-responses")
    org.projects.rate_limits.update_rate_limit(f"rl-{MODEL}", project_id=project, max_requests_per_1_day=1)
    with sdk(live, api_key=key).realtime.connect(model=MODEL) as connection:
        events_until(connection, "session.created")
        connection.session.update(session=TEXT_ONLY)
        events_until(connection, "session.updated")
        say(connection, "Hi.")
        connection.response.create()
        assert events_until(connection, "response.done")[-1]["response"]["status"] in ("completed", "incomplete")
        connection.response.create()
        error = next_error(connection)["error"]
    assert error["code"] == "rate_limit_exceeded", error
    assert f"Rate limit reached for {MODEL} in project {project} on requests per day (RPD): Limit 1, Used 1" in error["message"]


def test_each_transcribed_turn_is_admitted_by_its_projects_limits_on_the_speech_model(live, org):
    project, key = project_key(org, "realtime-turns")
    org.projects.rate_limits.update_rate_limit("rl-whisper-1", project_id=project, max_requests_per_1_day=1)
    clip, _ = librivox()[1]
    with sdk(live, api_key=key).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
        connection.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
        events_until(connection, "session.updated")
        for _ in range(2):
            send_audio(connection, pcm24k(clip)[: 24000 * 2])  # one second of speech
            connection.input_audio_buffer.commit()
            events_until(connection, "input_audio_buffer.committed")
        events_until(connection, "conversation.item.input_audio_transcription.completed")
        refused = events_until(connection, "conversation.item.input_audio_transcription.failed")[-1]
    # whisper-1 is an alias: its limits are its model's (ModelRegistry.canonical), named so.
    assert refused["error"]["code"] == "rate_limit_exceeded" and "whisper-base" in refused["error"]["message"], refused


def test_each_transcribed_turn_counts_its_audio_against_the_projects_audio_megabytes(live, org):
    # 33 s: past a megabyte as a 16 kHz WAV. Silent: its bytes count as speech's would, and
    # Whisper finds no words in it (33 s of speech, beam-searched, were most of this file's CPU).
    long = silence(33)
    speech = pcm24k(librivox()[1][0])
    # The audio megabytes are a minute's, and the second turn is admitted once the first is
    # transcribed (turns in order): at load that took past the minute's end, and the second
    # turn was rightly let in by a new window (a fresh clone's run). So an exchange that
    # crossed a minute is done again, in a project of its own, at the start of the next.
    for attempt in range(2):
        first, refused, crossed = _two_turns(live, org, f"realtime-audio-megabytes-{attempt}", long, speech[:48000])
        if not crossed:
            break
    assert not crossed, "both tries crossed a minute"
    assert first["type"].endswith(".completed") and refused["type"].endswith(".failed"), refused
    assert refused["error"]["code"] == "rate_limit_exceeded", refused
    assert "on audio bytes per min (ABPM): Limit 1000000" in refused["error"]["message"], refused


def _two_turns(live, org, name: str, long: bytes, short: bytes) -> tuple[dict, dict, bool]:
    """Each turn's transcription event (completed or failed), with 1 MB a minute on
    whisper-1, and whether the exchange crossed a clock minute (its windows')."""
    project, key = project_key(org, name)
    org.projects.rate_limits.update_rate_limit("rl-whisper-1", project_id=project, max_audio_megabytes_per_1_minute=1)
    same_minute()
    minute = int(time.time()) // 60
    with sdk(live, api_key=key).realtime.connect(extra_query={"intent": "transcription"}) as connection:
        events_until(connection, "session.created")
        connection.session.update(session={"type": "transcription", "audio": {"input": {"turn_detection": None}}})
        events_until(connection, "session.updated")
        for turn in (long, short):
            send_audio(connection, turn)
            connection.input_audio_buffer.commit()
            events_until(connection, "input_audio_buffer.committed")
        ended = []  # each turn's transcription, completed or failed
        while len(ended) < 2:
            event = connection.recv().model_dump(exclude_unset=True, by_alias=True)
            if event["type"] in ("conversation.item.input_audio_transcription.completed",
                                 "conversation.item.input_audio_transcription.failed"):
                ended.append(event)
    return ended[0], ended[1], int(time.time()) // 60 != minute


def test_a_project_with_the_mcp_tool_turned_off_cannot_offer_it_in_a_session_a_response_or_a_client_secret(live, org):
    project, key = project_key(org, "no-mcp")
    org.projects.hosted_tool_permissions.update(project, mcp={"enabled": False})
    client = sdk(live, api_key=key)
    with client.realtime.connect(model=MODEL) as connection:
        events_until(connection, "session.created")
        connection.session.update(session={**TEXT_ONLY, "tools": [MCP_TOOL]})
        error = next_error(connection)["error"]
        assert (error["code"], error["param"]) == ("tool_not_permitted", "session.tools[0].type"), error
        connection.session.update(session=TEXT_ONLY)  # the session stayed as it was, and works
        assert events_until(connection, "session.updated")[-1]["session"]["tools"] == []
        say(connection, "Hi.")
        connection.response.create(response={"tools": [MCP_TOOL]})  # a response's own tools: held at its admission
        error = next_error(connection)["error"]
        assert (error["code"], error["param"]) == ("tool_not_permitted", "response.tools[0].type"), error
        connection.response.create()
        assert events_until(connection, "response.done")[-1]["response"]["status"] in ("completed", "incomplete")
    with pytest.raises(openai.PermissionDeniedError) as refused:
        client.realtime.client_secrets.create(session={**TEXT_ONLY, "model": MODEL, "tools": [MCP_TOOL]})
    assert (refused.value.code, refused.value.param) == ("tool_not_permitted", "session.tools[0].type")
