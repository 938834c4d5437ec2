"""A GGUF file's metadata keys, read by ggml's own reader (``gguf.h``, in the llama.cpp that
llama-cpp-python ships) through ctypes: its tensors are not read. gguf's Python reader parses
every key of a file as it opens it, a numpy view per item of each array: SmolLM2's 49,152 tokens
and 48,900 merges took it 3.4 CPU-s, ggml's reader 0.1 (each synthetic model's write took it)."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path
from types import TracebackType

_UINT32, _INT32 = 4, 5  # enum gguf_type


class _InitParams(ctypes.Structure):
    _fields_ = [("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p)]


@functools.cache
def _ggml() -> ctypes.CDLL:
    """ggml's base library, where llama-cpp-python loads its llama.cpp from (the same handle),
    by its own loader (each platform's file name, ``LLAMA_CPP_LIB_PATH``)."""
    from llama_cpp import llama_cpp
    from llama_cpp._ctypes_extensions import load_shared_library

    lib = load_shared_library("ggml-base", llama_cpp._base_path)
    lib.gguf_init_from_file.argtypes, lib.gguf_init_from_file.restype = [ctypes.c_char_p, _InitParams], ctypes.c_void_p
    lib.gguf_free.argtypes, lib.gguf_free.restype = [ctypes.c_void_p], None
    lib.gguf_find_key.argtypes, lib.gguf_find_key.restype = [ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int64
    lib.gguf_get_kv_type.argtypes, lib.gguf_get_kv_type.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_int
    lib.gguf_get_val_str.argtypes, lib.gguf_get_val_str.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_char_p
    lib.gguf_get_val_u32.argtypes, lib.gguf_get_val_u32.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_uint32
    lib.gguf_get_val_i32.argtypes, lib.gguf_get_val_i32.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_int32
    lib.gguf_get_arr_type.argtypes, lib.gguf_get_arr_type.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_int
    lib.gguf_get_arr_n.argtypes, lib.gguf_get_arr_n.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_size_t
    lib.gguf_get_arr_data.argtypes, lib.gguf_get_arr_data.restype = [ctypes.c_void_p, ctypes.c_int64], ctypes.c_void_p
    lib.gguf_get_arr_str.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_size_t]
    lib.gguf_get_arr_str.restype = ctypes.c_char_p
    return lib


class GGUFKeys:
    """``with GGUFKeys(path) as keys:`` its keys by name, while it is open."""

    def __init__(self, path: Path) -> None:
        self.lib = _ggml()
        self.ctx = self.lib.gguf_init_from_file(str(path).encode(), _InitParams(True, None))
        if not self.ctx:
            raise ValueError(f"{path}: not a GGUF file ggml can read")

    def __enter__(self) -> "GGUFKeys":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.lib.gguf_free(self.ctx)

    def __contains__(self, name: str) -> bool:
        return self._key(name) >= 0

    def _key(self, name: str) -> int:
        return int(self.lib.gguf_find_key(self.ctx, name.encode()))

    def _found(self, name: str) -> int:
        key = self._key(name)
        if key < 0:
            raise KeyError(name)
        return key

    def string(self, name: str) -> str:
        return self.lib.gguf_get_val_str(self.ctx, self._found(name)).decode()

    def integer(self, name: str) -> int:
        """A 32-bit integer key (a token id): unsigned, as the GGUF format writes them, or signed."""
        key = self._found(name)
        kind = self.lib.gguf_get_kv_type(self.ctx, key)
        if kind not in (_UINT32, _INT32):
            raise TypeError(f"{name}: not a 32-bit integer (gguf type {kind})")
        return int((self.lib.gguf_get_val_u32 if kind == _UINT32 else self.lib.gguf_get_val_i32)(self.ctx, key))

    def strings(self, name: str) -> list[str]:
        key = self._found(name)
        return [self.lib.gguf_get_arr_str(self.ctx, key, i).decode() for i in range(self.lib.gguf_get_arr_n(self.ctx, key))]

    def int32s(self, name: str) -> list[int]:
        key = self._found(name)
        if (kind := self.lib.gguf_get_arr_type(self.ctx, key)) != _INT32:
            raise TypeError(f"{name}: not an array of 32-bit integers (gguf type {kind})")
        count = self.lib.gguf_get_arr_n(self.ctx, key)
        return list((ctypes.c_int32 * count).from_address(self.lib.gguf_get_arr_data(self.ctx, key)))
