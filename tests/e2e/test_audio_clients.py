"""Real clients of the Audio operations against the live server and the local models: the
OpenAI Agents SDK's voice pipeline (speech in, a turn of a local chat model, speech out),
and Open WebUI's requests for speech to text and text to speech, replayed in the shapes its
backend sends (``backend/open_webui/routers/audio.py``: a ``requests`` multipart upload with
only ``file`` and ``model``; the browser's ``{input, voice}`` JSON with ``model`` added and
its user headers)."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, set_tracing_disabled
from agents.voice import (
    AudioInput,
    OpenAIVoiceModelProvider,
    SingleAgentVoiceWorkflow,
    TTSModelSettings,
    VoicePipeline,
    VoicePipelineConfig,
)

from tests.conftest import MODEL
from tests.support.audio import decoded, librivox, word_error_rate
from tests.support.clients import async_sdk, sdk

set_tracing_disabled(True)  # no trace export: it would go to OpenAI's cloud


def test_the_agents_sdk_voice_pipeline_runs_a_turn_on_local_models(server):
    question = "What is the capital of France?"
    spoken = sdk(server).audio.speech.create(model="tts-1", voice="alloy", input=question, response_format="pcm").content
    client = async_sdk(server)
    agent = Agent(
        name="assistant",
        instructions="Answer in one short sentence.",
        model=OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
        model_settings=ModelSettings(temperature=0, max_tokens=24),
    )
    transcripts: list[str] = []

    class Recorded(SingleAgentVoiceWorkflow):
        async def run(self, transcription: str):
            transcripts.append(transcription)
            async for text in super().run(transcription):
                yield text

    pipeline = VoicePipeline(
        workflow=Recorded(agent),
        stt_model="whisper-1",
        tts_model="gpt-4o-mini-tts",
        # hibari cannot follow instructions: the SDK's default ones would be refused (400).
        config=VoicePipelineConfig(
            model_provider=OpenAIVoiceModelProvider(openai_client=client),
            tracing_disabled=True,
            tts_settings=TTSModelSettings(instructions=""),
        ),
    )

    async def turn() -> tuple[bytes, list[str]]:
        result = await pipeline.run(AudioInput(buffer=np.frombuffer(spoken, dtype=np.int16)))
        audio, kinds = [], []
        async for event in result.stream():
            kinds.append(event.type)
            if event.type == "voice_stream_event_audio" and event.data is not None:
                audio.append(event.data.tobytes())
        return b"".join(audio), kinds

    audio, kinds = asyncio.run(turn())
    assert word_error_rate(question, transcripts[0]) <= 0.2
    assert "voice_stream_event_audio" in kinds and kinds[-1] == "voice_stream_event_lifecycle"
    assert len(audio) / 2 / 24000 > 0.3  # the answer, spoken as 24 kHz 16-bit PCM


def test_open_webui_speech_to_text_request_is_answered_with_text(server):
    path, reference = librivox()[1]
    with path.open("rb") as audio:
        response = httpx.post(
            server.api + "/audio/transcriptions",
            headers={"Authorization": "Bearer sk-open-webui"},
            files={"file": ("0b8f0d5e-3f5c-4d7e-9a55-2f0c1e6c9d11.wav", audio)},
            data={"model": "whisper-1"},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    assert word_error_rate(reference, response.json()["text"]) <= 0.2


def test_open_webui_text_to_speech_request_is_answered_with_mp3(server):
    response = httpx.post(
        server.api + "/audio/speech",
        json={"input": "Hello from Open WebUI.", "voice": "alloy", "model": "tts-1"},
        headers={
            "Content-Type": "application/json",
            "Authorization": "Bearer sk-open-webui",
            "X-OpenWebUI-User-Name": "Ada",
            "X-OpenWebUI-User-Id": "5b1c",
            "X-OpenWebUI-User-Email": "ada@example.com",
            "X-OpenWebUI-User-Role": "user",
        },
        timeout=120,
    )
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"
    codec, rate, seconds = decoded(response.content)
    assert codec == "mp3float" and rate == 24000 and 0.8 < seconds < 5
