"""The prefix every session of a client shares, kept on disk (issue #49): a coding agent's
prompt opens with thousands of tokens of instructions and tools that are the same in every
session, and on these cores computing them takes a minute (Codex's 6.4k tokens). Host memory
(prefixes.py) keeps them only while the worker lives; on disk a new session, a restarted
engine or another replica on the same disk starts from them.

What is kept: a prompt's first canonical part (everything before its last message,
prefixes.py), once a prefill has computed it, as llama.cpp's sequence state (its cells' K and
V). The copy to host memory is made on the engine's thread at the end of that step, once the
prompt's first token is out (~60 ms for 204 MB here: not on the time to first token; a short
last part computed in the same step comes along, and is cut off again where the file is
restored), or right after the decode when the last part is long; the file is written by one
thread beside it (written to a temporary name, then renamed: a reader never sees half a
file), so decoding never waits for the disk. A file is read and checked by another thread
too (``reading``), while the other streams decode.

A file is named by the digest of the tenant and the exact token ids, in a folder per model
identity (``model_identity``: the GGUF's size and ends, the KV types, flash attention, GPU
layers and llama.cpp's version: what makes the bytes of a state); it holds a header (the
tokens, whose they are, what any tenant may share of them, the state's size and XXH3 digest).
Reuse follows the host cache's tenant rule (``Holding.usable``): another tenant takes only
what both declare shared. A file whose size or digest is wrong (truncated, corrupted, a
version that differs) is ignored and removed, never restored. The folder is read as a
hostile one (issue #56: a deep JSON header gave 500s, a directory named like a file stopped
every later write, a FIFO hung every request to the model): only regular files are opened,
never blocking and never through a link, a header is a few small fields of checked types
within ``HEADER_MAX`` bytes, and anything else is skipped, or removed where it can be.
A temporary file counts in the folder's bytes while written, and one left by a writer that
died (untouched for ``ORPHANED_AFTER``) is removed.

Bounded by ``prefix_disk_mb`` over the folder (every replica's files): to make room the
tenant holding the most bytes loses its least recently used file (a restore touches it),
as in host memory.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import stat as stat_kinds
import struct
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import xxhash

from .prefixes import Holding

# 3: ``shared`` counts the shared messages' own text, never a request's tools (issue #56):
# files of 2 held more, and are removed unread; 2: the state's digest is XXH3-128 (1: SHA-256).
MAGIC = b"LLBPREFIX3\n"
SUFFIX = ".prefix"
TEMPORARY = ".tmp"
# A header is five short fields (~200 bytes); a longer one is not this module's.
HEADER_MAX = 4096
# A temporary file untouched this long was left by a writer that died (a write of 200 MB
# takes seconds): removed at the next scan.
ORPHANED_AFTER = 600.0
# A first part shorter than this is recomputed faster than a file is read and checked.
DISK_MIN = 256
# The GGUF's bytes read for its identity, at each end: its header (metadata, tensor table)
# and its last tensor's data; hashing a 40 GB file whole would take minutes at each start.
ENDS = 1 << 20


def model_identity(config: dict[str, Any]) -> str:
    """What a saved state is valid for: the model file and what makes its KV's bytes."""
    path = Path(config["path"])
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as file:
        digest.update(file.read(ENDS))
        file.seek(max(0, size - ENDS))
        digest.update(file.read(ENDS))
    for part in (
        size, config.get("type_k") or "f16", config.get("type_v") or "f16", config.get("flash_attn", "auto"),
        config.get("n_gpu_layers"), llama_cpp.__version__,
    ):
        digest.update(repr(part).encode() + b"\0")
    return digest.hexdigest()[:32]


def disk_prefixes(config: dict[str, Any]) -> DiskPrefixes | None:
    """The engine's prefixes on disk, by ``prefix_disk_dir`` and ``prefix_disk_mb``; None
    when off, or when the folder cannot be made (a read-only data directory): the engine
    runs without them rather than not at all."""
    disk_mb, folder = int(config.get("prefix_disk_mb") or 0), config.get("prefix_disk_dir")
    if not (disk_mb and folder and config.get("prefix_sharing", True)):
        return None
    try:
        return DiskPrefixes(Path(folder), disk_mb << 20, model_identity(config))
    except OSError as exc:
        print(f"prefixes on disk off: {exc}", file=sys.stderr)  # the worker's stderr: the API process's log
        return None


def _digest(state: bytes | bytearray | memoryview) -> str:
    """A state's check against a damaged file: XXH3 reads 200 MB in ~10 ms, SHA-256 in ~100
    ms (with SHA-NI), all of it on a new session's first token. Not a defence against a
    forger: whoever can write this folder can write the model's."""
    return xxhash.xxh3_128_hexdigest(state)


def _open(path: Path) -> Any:
    """``path`` opened for reading if it is a regular file: never through a link, and never
    blocking (a FIFO's open waits for a writer: it hung every request to the model)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        if not stat_kinds.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _checked(header: Any, file_size: int) -> dict[str, Any]:
    """A header's fields, each of its type and within the file (``ValueError`` otherwise)."""
    kinds = {"tenant": str, "shared": int, "n_tokens": int, "state_size": int, "state_xxh3": str}
    if not isinstance(header, dict) or set(header) != set(kinds):
        raise ValueError("not a prefix header")
    if any(type(header[name]) is not kind for name, kind in kinds.items()):
        raise ValueError("a header field of the wrong type")
    if not (0 < header["n_tokens"] <= file_size // 4 and 0 <= header["shared"] <= header["n_tokens"] and 0 < header["state_size"] < file_size):
        raise ValueError("header sizes outside the file")
    return header


def _name(holding: Holding) -> str:
    digest = hashlib.sha256(holding.tenant.encode() + b"\0" + struct.pack(f"<{len(holding.tokens)}i", *holding.tokens))
    return digest.hexdigest()[:40] + SUFFIX


@dataclass(eq=False)
class Entry:
    path: Path
    holding: Holding
    size: int  # the file's bytes
    header_end: int  # where the state starts
    state_size: int
    state_digest: str
    used: float  # the file's mtime: last written or restored


class DiskPrefixes:
    """Prefixes on disk for one model (the module's docstring); called from the engine's thread."""

    def __init__(self, folder: Path, budget: int, identity: str) -> None:
        self.folder = folder / identity
        self.budget = budget
        self.entries: dict[str, Entry] = {}  # file name ⇒ entry
        self._scanned = -1  # the folder's mtime when it was last read
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefix-disk")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefix-read")
        self._lock = threading.Lock()  # the writer's eviction against the engine's index
        self._writing: set[str] = set()
        self.pending = 0  # bytes of temporary files: being written (here or by a replica)
        self.restores = 0
        self.written = 0
        self.rejected = 0  # files found corrupt or unreadable
        self.folder.mkdir(parents=True, exist_ok=True)

    # --- reading ---

    def _scan(self) -> None:
        """Read the headers of files written since the last scan (by this worker or another
        replica); forget those gone."""
        try:
            mtime = self.folder.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._scanned:
            return
        self._scanned = mtime
        names = self._files()
        with self._lock:
            for name in set(self.entries) - names:
                del self.entries[name]
            for name in names - set(self.entries):
                entry = self._header(self.folder / name)
                if entry is not None:
                    self.entries[name] = entry

    def _files(self) -> set[str]:
        """The names of the folder's regular prefix files; what temporary files hold is
        counted in ``pending``, and those a dead writer left are removed."""
        names, pending, now = set(), 0, time.time()
        try:
            found = list(os.scandir(self.folder))
        except OSError:
            return set(self.entries)
        for item in found:
            try:
                if not item.is_file(follow_symlinks=False):
                    continue  # a directory, a FIFO, a link: not this module's, never opened
                if item.name.endswith(SUFFIX):
                    names.add(item.name)
                elif item.name.endswith(TEMPORARY):
                    info = item.stat(follow_symlinks=False)
                    if now - info.st_mtime > ORPHANED_AFTER:
                        os.unlink(item.path)
                    else:
                        pending += info.st_size
            except OSError:
                continue
        self.pending = pending
        return names

    def _header(self, path: Path) -> Entry | None:
        try:
            with _open(path) as file:
                size = os.fstat(file.fileno()).st_size
                if file.read(len(MAGIC)) != MAGIC:
                    raise ValueError("not a prefix file")
                (length,) = struct.unpack("<I", file.read(4))
                if length > HEADER_MAX:
                    raise ValueError("a header longer than any of ours")
                header = _checked(json.loads(file.read(length)), size)
                n_tokens = header["n_tokens"]
                tokens = list(struct.unpack(f"<{n_tokens}i", file.read(4 * n_tokens)))
                header_end = file.tell()
                mtime = os.fstat(file.fileno()).st_mtime
            holding = Holding(tokens, header["tenant"], header["shared"], len(tokens), len(tokens))
            if size != header_end + header["state_size"] or path.name != _name(holding):
                raise ValueError("size or name does not match the header")
            return Entry(path, holding, size, header_end, header["state_size"], header["state_xxh3"], mtime)
        except (OSError, ValueError, RecursionError, struct.error):  # RecursionError: a deep JSON header
            self._reject(path)
            return None

    def _reject(self, path: Path) -> None:
        self.rejected += 1
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass  # another's file in a folder this worker may not write: only never read

    def best(self, prompt: list[int], tenant: str, shared: int, limit: int, split: int, canonical: bool = True) -> tuple[Entry | None, int]:
        """The file giving ``prompt`` the most tokens, and how many (the host cache's rule)."""
        self._scan()
        with self._lock:
            entries = list(self.entries.values())
        best, length = None, 0
        for entry in entries:
            usable = entry.holding.usable(prompt, tenant, shared, limit, split, canonical)
            if usable > length:
                best, length = entry, usable
        return best, length

    def read(self, entry: Entry) -> ctypes.Array | None:
        """``entry``'s state, once its size and digest are checked; None when the file is
        wrong (it is removed: no worker tries it again)."""
        try:
            with _open(entry.path) as file:
                file.seek(entry.header_end)
                state = bytearray(entry.state_size)
                read = file.readinto(state)
        except (OSError, ValueError):
            read = -1
        if read != entry.state_size or _digest(state) != entry.state_digest:
            with self._lock:
                self.entries.pop(entry.path.name, None)
            self._reject(entry.path)
            return None
        return (ctypes.c_uint8 * entry.state_size).from_buffer(state)

    def reading(self, entry: Entry) -> Future:
        """``read(entry)`` by a thread beside the engine's: its future."""
        return self._reader.submit(self.read, entry)

    def restored(self, entry: Entry) -> Holding:
        """``entry`` was put in a sequence: the most recently used, the last to go."""
        try:
            os.utime(entry.path)
            entry.used = time.time()
        except OSError:
            pass
        self.restores += 1
        return entry.holding.copy()

    # --- writing ---

    def save(self, ctx: llama_cpp.llama_context_p, seq: int, holding: Holding) -> None:
        """Keep what ``seq`` holds (``holding``: a prompt's first part) unless it is on disk
        already: its state copied here, the file written by the writer thread."""
        name = _name(holding)
        if name in self._writing or (self.folder / name).exists():
            return
        size = llama_cpp.llama_state_seq_get_size(ctx, seq)
        if not 0 < size <= self.budget:
            return
        state = (ctypes.c_uint8 * size)()
        if llama_cpp.llama_state_seq_get_data(ctx, state, size, seq) != size:
            return
        self._writing.add(name)
        self._writer.submit(self._write, name, holding.copy(), state)

    def _write(self, name: str, holding: Holding, state: ctypes.Array) -> None:
        try:
            data = memoryview(state).cast("B")
            header = json.dumps({
                "tenant": holding.tenant, "shared": holding.shared, "n_tokens": len(holding.tokens),
                "state_size": len(data), "state_xxh3": _digest(data),
            }).encode()
            size = len(MAGIC) + 4 + len(header) + 4 * len(holding.tokens) + len(data)
            if not self._room(holding.tenant, size):
                return
            temporary = self.folder / f".{name}.{os.getpid()}{TEMPORARY}"
            try:
                with temporary.open("wb") as file:
                    file.write(MAGIC + struct.pack("<I", len(header)) + header)
                    file.write(struct.pack(f"<{len(holding.tokens)}i", *holding.tokens))
                    file.write(data)
                temporary.replace(self.folder / name)
            except OSError:
                temporary.unlink(missing_ok=True)
                raise
            self.written += 1
            self._scanned = -1  # the stats count it, and its temporary file no more
        except OSError:
            pass  # a full or read-only disk: the prefix is only not kept
        finally:
            self._writing.discard(name)

    def _room(self, tenant: str, size: int) -> bool:
        """Make room for ``size`` bytes of ``tenant``'s in the folder (every replica's files):
        the least recently used file of the tenant holding the most goes (on a tie, the
        writer's own); False when only the writer could give way and has nothing to give."""
        self._scanned = -1
        self._scan()
        with self._lock:
            files = sorted(self.entries.values(), key=lambda entry: entry.used)
            held: dict[str, int] = {}
            for entry in files:
                held[entry.holding.tenant] = held.get(entry.holding.tenant, 0) + entry.size
            used = sum(held.values()) + self.pending
            while used + size > self.budget:
                holding = {**held, tenant: held.get(tenant, 0) + size}
                fullest = max(holding, key=lambda other: (holding[other], other == tenant))
                oldest = next((entry for entry in files if entry.holding.tenant == fullest), None)
                if oldest is None:
                    return False
                files.remove(oldest)
                self.entries.pop(oldest.path.name, None)
                oldest.path.unlink(missing_ok=True)
                held[fullest] -= oldest.size
                used -= oldest.size
        return True

    def flush(self) -> None:
        """Wait for the files being written (tests, and a worker stopping)."""
        self._writer.submit(lambda: None).result()

    def bytes_used(self) -> int:
        return sum(entry.size for entry in self.entries.values()) + self.pending

    def stats(self) -> dict[str, int]:
        self._scan()
        return {
            "disk_prefix_bytes": self.bytes_used(), "disk_prefix_entries": len(self.entries),
            "disk_prefix_restores": self.restores, "disk_prefix_writes": self.written,
        }

    def close(self) -> None:
        self._reader.shutdown(wait=True)
        self._writer.shutdown(wait=True)
