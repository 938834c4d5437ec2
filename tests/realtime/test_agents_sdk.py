"""The Agents SDK's realtime agents (``RealtimeAgent`` / ``RealtimeRunner``) and its voice
pipeline's speech-to-text (``semantic_vad`` by default) against the local models."""

from __future__ import annotations

import asyncio


from tests.conftest import MODEL
from tests.support.audio import librivox, word_error_rate
from tests.support.realtime import pcm24k, silence


def realtime_url(server, query: str) -> str:
    return server.base_url.replace("http://", "ws://") + "/v1/realtime?" + query


def test_a_realtime_agent_answers_a_spoken_question(server):
    from agents.realtime import RealtimeAgent, RealtimeRunner

    clip, words = librivox()[1]

    async def run() -> tuple[list[str], bytes, str]:
        agent = RealtimeAgent(name="Assistant", instructions="Answer in one short sentence.")
        # An answer of a sentence at most: uncapped, SmolLM2 went on for 6 to 37 s of speech
        # (2 to 4.7 CPU-s a turn, synthesized whole); 24 tokens, ~7 s of it.
        settings = {"model_name": MODEL, "input_audio_transcription": {"model": "whisper-1"}, "max_output_tokens": 24}
        runner = RealtimeRunner(agent, config={"model_settings": settings})
        session = await runner.run(model_config={"url": realtime_url(server, f"model={MODEL}"), "api_key": "anything"})
        kinds, audio, heard = [], b"", ""
        async with session:
            await session.send_audio(silence(0.5) + pcm24k(clip) + silence(1.2))
            async for event in session:
                kinds.append(event.type)
                if event.type == "error":
                    raise AssertionError(event.error)
                if event.type == "audio":
                    audio += event.audio.data
                if event.type == "history_updated":
                    for item in event.history:
                        if getattr(item, "role", None) == "user":
                            heard = " ".join(getattr(part, "transcript", None) or "" for part in item.content) or heard
                if event.type == "agent_end":
                    break
        return kinds, audio, heard

    kinds, audio, heard = asyncio.run(asyncio.wait_for(run(), 120))
    assert {"agent_start", "audio", "agent_end"} <= set(kinds), kinds
    assert len(audio) > 24000, kinds
    assert word_error_rate(words, heard) < 0.3, heard


def test_the_voice_pipeline_transcribes_streamed_turns_with_semantic_vad(server):
    import numpy as np
    from agents.voice import STTModelSettings, StreamedAudioInput
    from agents.voice.models.openai_stt import OpenAISTTModel
    from openai import AsyncOpenAI

    clips = librivox()[:2]

    async def run() -> list[str]:
        client = AsyncOpenAI(base_url=server.api, api_key="anything", max_retries=0)
        model = OpenAISTTModel("gpt-4o-transcribe", client)
        audio = StreamedAudioInput()
        session = await model.create_session(audio, STTModelSettings(), False, False)
        pcm = silence(0.5) + pcm24k(clips[0][0]) + silence(2) + pcm24k(clips[1][0]) + silence(2)
        samples = np.frombuffer(pcm, dtype=np.int16)
        for start in range(0, len(samples), 2400):
            await audio.add_audio(samples[start : start + 2400])
        turns = []
        async for text in session.transcribe_turns():
            turns.append(text)
            if len(turns) == 2:
                break
        await session.close()
        return turns

    turns = asyncio.run(asyncio.wait_for(run(), 120))
    for (_, words), heard in zip(clips, turns):
        assert word_error_rate(words, heard) < 0.3, (words, heard)
