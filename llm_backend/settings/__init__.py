"""All settings in one object (rank -1): environment variables (prefix ``LLM_BACKEND_``) over an
optional YAML config file over defaults; every field is documented in the README table.
``Settings`` (here) holds the service's own fields and mixes in its parts, kept apart by noun:

- ``admin.py``: the organisation's: the Admin API's home, rate limits, prices, usage
  accounting, spend alerts, data retention (docs/ADMIN.md);
- ``audio.py``: the local audio models, their workers, what one upload may be (docs/AUDIO.md);
- ``images.py``: what one image of a chat request may be (bytes, pixels, images a request),
  where one named by URL may be downloaded from;
- ``realtime.py``: what one Realtime session may hold or do, its client secrets' key;
- ``upstream.py``: an upstream API (the config file's ``upstreams:``);
- ``model.py``: one local model (``models:``): its GGUF's source, how llama.cpp runs it
  (context, threads, GPU offload, KV cache types), how long it stays loaded, what its ids mean
  (aliases, personas, defaults; docs/MODELS.md); ``shapes.py``: real models' shapes for
  ``source: synthetic://<shape>``, pure data, checked when the config is read;
  ``ceiling.py``: the largest ``max_tokens`` a request is fitted to, without pydantic;
- ``types.py``: what they share (a list an environment variable gives as ``a,b,c``).

A family's settings are a class of its own (``FamilySettings``, in its folder), read as
``settings.of(TheSettings)`` from the same sources and checked when the app is built.

What the package names (``Settings``, ``get_settings``, ``ModelConfig``...) is ``service.py``'s,
loaded on first use (PEP 562): importing one part does not import the rest, so an engine
worker, which needs one rule of them (``ceiling.py``), starts without pydantic (its imports
0.22 CPU-s, against 0.30 when it took the rule from ``model.py``: median of 8, measured here).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .model import ModelConfig, Persona, SamplingDefaults, agent_sized
    from .service import (
        DEFAULT_MODEL_ID,
        DEFAULT_MODEL_PACKAGE,
        PROJECT_ROOT,
        FamilySettings,
        Settings,
        get_settings,
    )
    from .upstream import UpstreamConfig


def __getattr__(name: str) -> Any:
    service = importlib.import_module(f"{__name__}.service")  # not ``from . import``: it asks this for the name
    try:
        return service.__dict__[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
