"""An engine driven in the test's own process (``backends/llama/engine/``), its events recorded:
for the tests of the engine's mechanics, which step it themselves."""

from __future__ import annotations

from typing import Any

from llm_backend.backends.llama.engine.batching import Engine


class Recorder:
    """An engine's ``emit``: every event it sent, in order."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def __call__(self, event: dict) -> None:
        self.events.append(event)

    def text(self, rid: str, index: int = 0) -> str:
        return "".join(
            e["text"] for e in self.events if e["id"] == rid and e["event"] == "delta" and e["index"] == index
        )

    def finish_reason(self, rid: str, index: int = 0) -> str | None:
        return next(
            (e.get("finish_reason") for e in self.events if e["id"] == rid and e.get("finish_reason") and e["index"] == index),
            None,
        )


def recording_engine(config: dict[str, Any]) -> Engine:
    """An engine of ``config``, llama.cpp's own log quiet, its events in ``engine.recorder``."""
    from llama_cpp import _logger

    _logger.set_verbose(False)
    recorder = Recorder()
    engine = Engine(config, recorder)
    engine.recorder = recorder
    return engine


def run(engine: Engine) -> None:
    """Step ``engine`` until nothing is left to do."""
    while engine.busy:
        engine.step()
