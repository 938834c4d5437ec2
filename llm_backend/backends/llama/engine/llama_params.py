"""A model's settings as llama.cpp's own parameters: how the weights load (GPU layers, split,
mmap/mlock) and what the context keeps (flash attention, KV cache types, KV offload); and
what the model takes in memory by those settings (``model_memory``); how long a sequence may
be and how many tokens the KV pool the sequences share holds (``windows``); and what the
device the layers run on decides: the prompt chunk's size (``batch_sizes``) and the order of
a step (``overlaps``: batching.py).

Named as llama.cpp names them (settings/model.py); what a build cannot honour it ignores, and
the worker reports whether this build offloads at all (``gpu_offload`` in its hello), so the
API process can say once what was ignored (local_model.py).
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp

# llama-cpp-python's "all layers" (its n_gpu_layers=-1).
ALL_LAYERS = 0x7FFFFFFF
SPLIT_MODES = {"none": llama_cpp.LLAMA_SPLIT_MODE_NONE, "layer": llama_cpp.LLAMA_SPLIT_MODE_LAYER, "row": llama_cpp.LLAMA_SPLIT_MODE_ROW}
FLASH_ATTENTION = {
    "auto": llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO,
    True: llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED,
    False: llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED,
}


# llama.cpp's KV cache types: (ggml type, elements per block, bytes per block).
KV_TYPES = {
    "f32": (llama_cpp.GGML_TYPE_F32, 1, 4),
    "f16": (llama_cpp.GGML_TYPE_F16, 1, 2),
    "bf16": (30, 1, 2),  # ggml.h's GGML_TYPE_BF16: llama_cpp names no constant for it
    "q8_0": (llama_cpp.GGML_TYPE_Q8_0, 32, 34),
    "q4_0": (llama_cpp.GGML_TYPE_Q4_0, 32, 18),
    "q4_1": (llama_cpp.GGML_TYPE_Q4_1, 32, 20),
    "q5_0": (llama_cpp.GGML_TYPE_Q5_0, 32, 22),
    "q5_1": (llama_cpp.GGML_TYPE_Q5_1, 32, 24),
    "iq4_nl": (llama_cpp.GGML_TYPE_IQ4_NL, 32, 18),
}


def model_params(config: dict[str, Any]) -> Any:
    """llama.cpp's model parameters for the engine ``config`` (local_model.engine_config)."""
    params = llama_cpp.llama_model_default_params()
    layers = config.get("n_gpu_layers")
    if layers is not None:
        params.n_gpu_layers = ALL_LAYERS if layers == "all" else int(layers)
    if config.get("split_mode"):
        params.split_mode = SPLIT_MODES[config["split_mode"]]
    params.main_gpu = int(config.get("main_gpu") or 0)
    shares = config.get("tensor_split")
    if shares:
        # ctypes keeps the array alive with the struct (its _objects).
        params.tensor_split = (ctypes.c_float * llama_cpp.llama_max_devices())(*shares)
    mmap, mlock = config.get("use_mmap", True), config.get("use_mlock", False)
    params.load_mode = {
        (True, False): llama_cpp.LLAMA_LOAD_MODE_MMAP,
        (True, True): llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK,
        (False, True): llama_cpp.LLAMA_LOAD_MODE_MLOCK,
        (False, False): llama_cpp.LLAMA_LOAD_MODE_NONE,
    }[(bool(mmap), bool(mlock))]
    return params


def context_params(config: dict[str, Any]) -> Any:
    """llama.cpp's context parameters that come from the model's settings; the engine sets
    the rest (sizes, threads, sequences)."""
    params = llama_cpp.llama_context_default_params()
    params.flash_attn_type = FLASH_ATTENTION[config.get("flash_attn", "auto")]
    params.offload_kqv = bool(config.get("offload_kqv", True))
    params.type_k = KV_TYPES[config.get("type_k") or "f16"][0]
    params.type_v = KV_TYPES[config.get("type_v") or "f16"][0]
    return params


def _row_bytes(elements: int, kind: str) -> int:
    _, block, size = KV_TYPES[kind]
    return -(-elements // block) * size


def kv_bytes_per_token(model: Any, type_k: str = "f16", type_v: str = "f16") -> int:
    """What one token's keys and values take in the KV cache, over all layers, at these
    types: from the GGUF's dimensions (per-layer head counts and sliding windows aside), as
    llama.cpp allocates them (its "llama_kv_cache: size" line says the same: tests)."""
    metadata = model.metadata()
    arch = metadata.get("general.architecture", "")
    n_embd, n_head = llama_cpp.llama_model_n_embd(model.model), llama_cpp.llama_model_n_head(model.model)
    n_head_kv, n_layer = llama_cpp.llama_model_n_head_kv(model.model), llama_cpp.llama_model_n_layer(model.model)
    key = int(metadata.get(f"{arch}.attention.key_length") or n_embd // max(n_head, 1))
    value = int(metadata.get(f"{arch}.attention.value_length") or n_embd // max(n_head, 1))
    return n_layer * (_row_bytes(key * n_head_kv, type_k) + _row_bytes(value * n_head_kv, type_v))


# The share of the KV pool each sequence had before the pool was shared (a fixed 2048-token
# context per sequence): the default pool keeps that much for every sequence, so a model
# served at its trained window takes no more memory than it did at 2048 per sequence.
SHARE = 2048


def trained_window(model: Any) -> int:
    """The context the model was trained for: its GGUF's ``<arch>.context_length``."""
    metadata = model.metadata()
    trained = metadata.get(f"{metadata.get('general.architecture', '')}.context_length")
    return int(trained) if trained else int(llama_cpp.llama_model_n_ctx_train(model.model))


def windows(model: Any, config: dict[str, Any], parallel: int) -> tuple[int, int]:
    """(the longest sequence, the tokens of the KV pool all sequences share): ``n_ctx`` or
    the trained window; a window each when the pool is not shared (``kv_shared: false``);
    ``kv_size``, else ``n_ctx`` x ``parallel`` where ``n_ctx`` is given
    (what it took before the pool was shared), else enough for the window or ``SHARE`` each."""
    if not config.get("kv_shared", False):
        # Each sequence its own cells (the default: a greedy answer the same bits whatever runs
        # beside it); SHARE each unless n_ctx says, as many cells as the trained window would
        # take shared, not parallel times it.
        window = int(config.get("n_ctx") or min(trained_window(model), SHARE))
        return window, window * parallel
    window = int(config.get("n_ctx") or trained_window(model))
    if config.get("kv_size"):
        pool = int(config["kv_size"])
    elif config.get("n_ctx"):
        pool = window * parallel
    else:
        pool = max(window, SHARE * parallel)
    return min(window, pool), pool


def model_memory(model: Any, config: dict[str, Any], pool: int, window: int) -> dict[str, int]:
    """What the model takes in a worker's own memory by its settings: the KV pool every
    sequence shares, and the weights when they are read rather than mapped (``use_mmap:
    false``); ``kv_bytes_per_sequence`` is what one sequence as long as the window takes."""
    per_token = kv_bytes_per_token(model, config.get("type_k") or "f16", config.get("type_v") or "f16")
    weights = 0 if config.get("use_mmap", True) else int(llama_cpp.llama_model_size(model.model))
    kv = per_token * pool
    return {"kv_bytes_per_sequence": per_token * window, "kv_bytes": kv, "model_bytes": kv + weights}


# A step's tokens beside generating streams: their rows, then prompt chunks up to it (the
# model's ``n_batch``). A stream waits for at most this much prompt between two tokens:
# llama.cpp's own n_ubatch default, and vLLM's first chunked-prefill budget, chosen there for
# the best inter-token latency on an A100 (vLLM PR #4580). On these 2 cores it is also the
# prompt chunk with no stream waiting: larger ones save nothing (a 1,711-token prompt's CPU
# time: 11.4 s in chunks of 256, 11.5 of 512, 11.9 of 1024, 12.1 of 2048; docs/MODELS.md).
N_BATCH = 512
# A prompt chunk with no stream waiting, layers on a GPU: 512 rows leave a GPU's matrix units
# short of work (AMD's llama.cpp fork defaults to 2048 for that reason; a hybrid CPU+GPU MoE
# prefilled 3x faster at 2048 than at 512: docs/MODELS.md; not measured here, no GPU). Its
# cost: the compute buffer llama.cpp reserves grows with it (SmolLM2, 8 x 2048 cells: 102.5
# MiB at 512, 410 MiB at 2048).
GPU_UBATCH = 2048


def offloads(config: dict[str, Any]) -> bool:
    """Whether the model's layers run on a GPU: a build that offloads, and layers not kept
    on the CPU (llama.cpp offloads every layer by default: ``n_gpu_layers`` -1)."""
    return gpu_offload() and str(config.get("n_gpu_layers")) != "0"


def batch_sizes(config: dict[str, Any], offloaded: bool) -> tuple[int, int]:
    """(``n_batch``: a step's tokens beside generating streams, ``n_ubatch``: a prompt chunk
    with none generating), by the model's settings, else by the device (``offloaded``)."""
    n_batch = int(config.get("n_batch") or N_BATCH)
    default = max(GPU_UBATCH, n_batch) if offloaded else n_batch
    return n_batch, int(config.get("n_ubatch") or default)


def overlaps(config: dict[str, Any], offloaded: bool) -> bool:
    """Whether a step's output stage runs beside the next decode (batching.py): on a GPU,
    where llama_decode returns before the device is done; the CPU computes in the calling
    thread, where the overlap gains nothing and a stop string's extra row costs. ``overlap``
    in the settings forces either (the tests run the overlapped order on the CPU)."""
    forced = config.get("overlap")
    return offloaded if forced is None else bool(forced)


def gpu_offload() -> bool:
    """Whether this build of llama.cpp can offload to a GPU (CUDA, Metal, Vulkan...)."""
    return bool(llama_cpp.llama_supports_gpu_offload())
