"""Local audio models: speech to text (faster-whisper) and text to speech (hibari, or Piper as an extra).

Each model runs in its own supervised worker process (``worker.py``), started on first use,
driven by the chat engines' ``WorkerProcess`` (a crash fails only the requests it was
serving, and the worker is restarted). In front of it: ``parallel`` requests at once, a
bounded line of ``queue_size`` behind them that serves tenants in turn (``fair_line.py``;
429 beyond, or after ``queue_timeout``). The
API process only reads uploads and relays events; decoding, inference and encoding run in
the worker, on threads taken from the same core budget as the chat engines (``cores.py``):
``audio_threads``, or every core (``audio_threads_alone``) for a transcription that starts
while nothing else computes (no chat sequence decoding, no other audio request) - a voice
turn's, typically: Whisper base took 3.9 s for a 4.8 s question on one of this machine's two
cores, 2.2 s on both (issue #41); beside other work it would take their cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable

from ... import errors
from ...errors import model_not_found
from ...json.types import Json
from ...settings import Settings
from ..base import ModelCard, ModelKind, Serving, Stream, tenant
from ..capabilities import SPEECH_MODEL, TRANSCRIPTION_MODEL
from ..events import ModelEvents
from ..fair_line import Admission
from ..lifecycle import Lifecycle
from ..llama.worker_process import WorkerProcess
from ..llama.cores import service_cores
from .sources import piper_voice_files, whisper_model_dir

WORKER_MODULE = "llm_backend.backends.audio.worker"
OWNED_BY = "llm-backend:local"
OPERATIONS = {"transcription": ("createTranscription", "createTranslation"), "speech": ("createSpeech",)}


class AudioModel:
    """One audio model: its id and aliases, its worker, its line, its lifecycle."""

    def __init__(self, kind: str, model_id: str, aliases: list[str], settings: Settings, events: ModelEvents) -> None:
        self.kind, self.id, self.aliases, self.settings = kind, model_id, aliases, settings
        cores = service_cores(settings.cpu_cores)
        self.threads = settings.audio_threads or max(1, cores - 1)
        self.threads_alone = settings.audio_threads_alone or cores
        self.parallel = settings.audio_parallel
        self.in_flight = 0  # requests admitted and not yet done
        self.others_busy: Callable[[], bool] = lambda: False  # whether other work computes now (AudioBackend)
        self.worker: WorkerProcess | None = None
        self.lifecycle = Lifecycle(model_id, self.start, self.stop, events)
        self.admission = Admission(model_id, self.parallel, settings.queue_size, settings.queue_timeout)

    @property
    def ids(self) -> list[str]:
        return [self.id, *self.aliases]

    async def start(self) -> None:
        config: Json = {"kind": self.kind, "threads": self.threads, "parallel": self.parallel}
        if self.kind == "transcription":
            packages, cache = self.settings.transcription_model_packages, self.settings.model_cache_dir
            config["path"] = str(await asyncio.to_thread(whisper_model_dir, packages, cache))
            config["max_seconds"] = self.settings.max_audio_seconds
            config["window_seconds"] = self.settings.audio_window_seconds
            config["threads_alone"] = self.threads_alone
        else:
            config.update(engine=self.settings.speech_engine, voice=self.settings.speech_voice)
            if self.settings.speech_engine == "piper":
                model, model_config = piper_voice_files(self.settings.speech_piper_package, self.settings.speech_voice)
                config.update(voice_model=str(model), voice_config=str(model_config))
        worker = WorkerProcess(
            self.id, config, self.settings.worker_start_timeout, module=WORKER_MODULE, memory_limit=self.settings.worker_memory_mb << 20
        )
        await worker.start()
        self.worker = worker

    async def stop(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            await worker.stop()

    async def events(self, op: str, params: Json) -> Stream[Json]:
        """The worker's events for one request, once it has begun: an error before its first
        event (unreadable audio, a full line) is raised here, while an HTTP error can still
        be answered. The model and the place stay held until the events end or are closed."""
        hold = contextlib.AsyncExitStack()
        try:
            await hold.enter_async_context(self.lifecycle.use(self.settings.model_load_timeout))
            await hold.enter_async_context(self.admission.slot(tenant.get()))
            if op == "transcribe":  # every core when nothing else computes (decided as it starts)
                params = {**params, "alone": not (self.in_flight or self.others_busy())}
            self.in_flight += 1
            hold.callback(self._done)
            if self.worker is None:  # stopped while this request waited for its place (shutdown)
                raise errors.worker_crashed()
            calls = self.worker.call(op, params)
            hold.push_async_callback(calls.aclose)
            first = await calls.__anext__()
        except BaseException:
            await hold.aclose()
            raise
        return _Held(first, calls, hold)

    def _done(self) -> None:
        self.in_flight -= 1

    def status(self) -> Json:
        lifecycle = self.lifecycle
        return {
            "id": self.id,
            "object": "model",
            "owned_by": OWNED_BY,
            "state": lifecycle.state.value,
            "load": "lazy",
            "aliases": self.aliases,
            "personas": [],
            "loaded_at": lifecycle.loaded_at,
            "loads": lifecycle.loads,
            "error": lifecycle.error,
            "slots": 1,
        }


class _Held:
    """Events whose first is in hand; closing them, started or not, releases the model."""

    def __init__(self, first: Json, rest: Stream[Json], hold: contextlib.AsyncExitStack) -> None:
        self._first: Json | None = first
        self._rest, self._hold = rest, hold

    def __aiter__(self) -> "_Held":
        return self

    async def __anext__(self) -> Json:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        try:
            return await self._rest.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        hold, self._hold = self._hold, contextlib.AsyncExitStack()
        await hold.aclose()


def _busy(engines_busy: Callable[[], bool], others: list[AudioModel]) -> bool:
    return engines_busy() or any(other.in_flight for other in others)


class AudioBackend:
    """The local audio models as a backend (``backends/base.py``): the registry routes their
    ids, ``/v1/models`` lists them, the admin operations load and unload them; a
    speech-to-text model transcribes, a text-to-speech model speaks (``model_kind``)."""

    name = "local"

    def __init__(self, settings: Settings, events: ModelEvents | None = None, engines_busy: Callable[[], bool] = lambda: False) -> None:
        """``engines_busy``: whether the chat engines decode now (a transcription started
        then leaves them their cores)."""
        events = events or ModelEvents()
        self.created = int(time.time())
        self.audio_models: list[AudioModel] = []
        if settings.transcription_model:
            self.audio_models.append(
                AudioModel("transcription", settings.transcription_model, settings.transcription_model_aliases, settings, events)
            )
        if settings.speech_model:
            self.audio_models.append(
                AudioModel("speech", settings.speech_model, settings.speech_model_aliases, settings, events)
            )
        self._by_id = {model_id: model for model in self.audio_models for model_id in model.ids}
        for model in self.audio_models:
            others = [other for other in self.audio_models if other is not model]
            model.others_busy = functools.partial(_busy, engines_busy, others)

    def model(self, model_id: str) -> AudioModel:
        """The audio model ``model_id`` names; 404 for none."""
        model = self._by_id.get(model_id)
        if model is None:
            raise model_not_found(model_id)
        return model

    # --- lifecycle and models ------------------------------------------------------------

    async def start(self) -> None:
        """Nothing yet: each model loads on its first request (or an admin load)."""

    async def stop(self) -> None:
        await asyncio.gather(*(model.lifecycle.close() for model in self.audio_models))

    def readiness(self) -> tuple[bool, str]:
        return True, ""

    async def probe(self) -> bool:
        return True

    def claims(self, model_id: str) -> bool:
        return model_id in self._by_id

    def configured_ids(self) -> list[str]:
        return list(self._by_id)

    def canonical_id(self, model_id: str) -> str:
        model = self._by_id.get(model_id)
        return model_id if model is None else model.id

    def model_kind(self, model_id: str) -> ModelKind:
        return TRANSCRIPTION_MODEL if self.model(model_id).kind == "transcription" else SPEECH_MODEL

    def models(self) -> list[ModelCard]:
        return [ModelCard(model_id, OWNED_BY, self.created) for model_id in self._by_id]

    async def refresh_models(self) -> None:
        """The configured ids are the list."""

    async def retrieve_model(self, model_id: str) -> Json:
        if not self.claims(model_id):
            raise model_not_found(model_id)
        return ModelCard(model_id, OWNED_BY, self.created).to_openai()

    def loaded_models(self) -> list[str]:
        return [model.id for model in self.audio_models if model.lifecycle.ready]

    def statuses(self) -> list[Json]:
        return [model.status() for model in self.audio_models]

    async def load(self, model_id: str) -> Json:
        model = self.model(model_id)
        await model.lifecycle.wait_loaded(model.settings.model_load_timeout)
        return model.status()

    async def unload(self, model_id: str) -> Json:
        model = self.model(model_id)
        await model.lifecycle.unload()
        return model.status()

    # --- operations ----------------------------------------------------------------------

    def serving(self, operation_id: str | None) -> Serving:
        return Serving.HERE  # answered (or refused) here, never forwarded

    async def transcription(self, model_id: str, request: Json) -> Stream[Json]:
        return await self.model(model_id).events("transcribe", request)

    async def speech(self, model_id: str, request: Json) -> Stream[Json]:
        return await self.model(model_id).events("speak", request)

