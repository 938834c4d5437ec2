"""A model's settings as llama.cpp's own parameters: how the weights load (GPU layers, split,
mmap/mlock) and what the context keeps (flash attention, KV cache types, KV offload).

Named as llama.cpp names them (model_settings.py); what a build cannot honour it ignores, and
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
    return params


def gpu_offload() -> bool:
    """Whether this build of llama.cpp can offload to a GPU (CUDA, Metal, Vulkan...)."""
    return bool(llama_cpp.llama_supports_gpu_offload())
