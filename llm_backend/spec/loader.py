"""Load OpenAPI documents quickly.

Parsing the 3 MB OpenAI YAML takes over a second; a pickle of the parsed form loads in
~40 ms. The cache file is named after the YAML's sha256, so any change of the document
(an upstream update is a file copy) invalidates it without bookkeeping.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

OPENAI_SPEC = "openai.yaml"
EXTENSIONS_SPEC = "extensions.yaml"
ANTHROPIC_SPEC = "anthropic.yaml"


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _parse(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as fh:
        return yaml.load(fh, Loader=loader)


def load_document(path: Path, cache_dir: Path | None) -> dict[str, Any]:
    """Return the parsed document, from the hash-keyed cache when possible."""
    if cache_dir is None:
        return _parse(path)
    digest = sha256_of(path)
    cache_file = cache_dir / f"{path.stem}-{digest[:16]}.pickle"
    try:
        with cache_file.open("rb") as fh:
            return pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError):
        pass
    document = _parse(path)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a concurrent starter never reads half a file.
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(document, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache_file)
    except OSError as exc:  # a read-only data dir only costs start-up time
        log.warning("could not write spec cache %s: %s", cache_file, exc)
    return document
