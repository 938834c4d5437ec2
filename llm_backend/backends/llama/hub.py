"""Models by name from a Hugging Face hub: ``hf://<owner>/<repo>/<file or glob>[@revision]``.

``huggingface_hub`` speaks the hub's API (``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``
honoured as it reads them): the revision resolved to a commit, the repo's files listed with
their sizes and LFS sha256, each file's URL and its GET, which resumes within one call after
a broken connection. Kept here, because that library's cache throws a partial file away when
its process ends: a partial download that survives the process (``<file>.partial``, resumed
by the next pull or load with a Range request), never longer than the hub's listing says
(a hub that sends more is refused at the first byte past it, and what it sent removed: one
left 303 MB on disk for a 3 MB file, issue #47), the file's sha256 checked against the
hub's listing before it takes its name, and a layout read without the network:

    <models_dir>/hf/<owner>/<repo>/refs/<revision>   the commit a revision was pulled at
    <models_dir>/hf/<owner>/<repo>/<commit>/<path>   files, each verified

A load looks on disk first (a pulled model loads with the hub unreachable, or offline), and
pulls what is missing. A split GGUF (gguf-split's ``-00001-of-0000N.gguf`` parts) is pulled
whole and loaded from its first part: llama.cpp joins the parts as it loads them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote

from ...settings.model import HubSource

log = logging.getLogger(__name__)

_SPLIT = re.compile(r"^(?P<prefix>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
HASH_CHUNK = 8 << 20


class HubError(RuntimeError):
    """A model that cannot be found on disk nor fetched (the load fails with this message)."""


class _TooLong(Exception):
    """The hub sent more bytes of a file than its listing says the file has."""


class _Bounded:
    """The ``.partial`` file as ``http_get`` writes it, refusing any byte past ``size``: the
    download stops there instead of filling the disk with whatever the hub keeps sending."""

    def __init__(self, out, size: int) -> None:
        self._out = out
        self._size = size

    def write(self, chunk: bytes) -> int:
        if self._out.tell() + len(chunk) > self._size:
            raise _TooLong
        return self._out.write(chunk)

    def __getattr__(self, name: str):  # tell, seek, truncate, flush: the file's own
        return getattr(self._out, name)


def _parts(split: re.Match) -> list[str]:
    count = int(split.group("count"))
    return [f"{split.group('prefix')}-{part:05d}-of-{count:05d}.gguf" for part in range(1, count + 1)]


def split_parts(path: Path) -> list[Path]:
    """A GGUF file and, for a split one's part, all the parts beside it."""
    split = _SPLIT.match(path.name)
    return [path.with_name(name) for name in _parts(split)] if split else [path]


def matching(paths: list[str], pattern: str) -> list[str]:
    """The paths ``pattern`` names, with the other parts of any split GGUF part it names."""
    chosen = set(fnmatch.filter(paths, pattern))
    splits = {split.group("prefix") for path in chosen if (split := _SPLIT.match(path))}
    chosen.update(path for path in paths if (split := _SPLIT.match(path)) and split.group("prefix") in splits)
    return sorted(chosen)


def gguf_files(paths: list[str], what: str) -> list[str]:
    """The one model among ``paths`` (GGUF files): a single file, or every part of one split
    GGUF, first part first. HubError if they hold several models or an incomplete split."""
    models: dict[str, list[str]] = {}
    for path in sorted(p for p in paths if p.endswith(".gguf")):
        split = _SPLIT.match(path)
        models.setdefault(split.group("prefix") if split else path, []).append(path)
    if not models:
        raise HubError(f"{what} matches no .gguf file")
    if len(models) > 1:
        raise HubError(f"{what} matches several models, name one: {', '.join(sorted(models))}")
    (files,) = models.values()
    split = _SPLIT.match(files[0])
    if split and files != _parts(split):
        missing = sorted(set(_parts(split)) - set(files))
        raise HubError(f"{what}: the split GGUF lacks {', '.join(missing) or 'parts'}")
    return files


@dataclass(frozen=True)
class PulledFile:
    repo: str
    commit: str
    revisions: list[str]  # the revisions pulled at this commit
    path: str  # in the repo
    size: int  # bytes on disk (so far, when not complete)
    complete: bool  # verified and named; else a partial download a pull resumes
    local: Path


class Hub:
    """The pulled models under ``models_dir`` and the hub they come from."""

    def __init__(self, models_dir: Path) -> None:
        self.root = models_dir / "hf"

    def repo_dir(self, repo: str) -> Path:
        return self.root / repo

    def _ref(self, source: HubSource) -> Path:
        return self.repo_dir(source.repo) / "refs" / quote(source.revision, safe="")

    def local_commit(self, source: HubSource) -> str | None:
        if _COMMIT.match(source.revision):
            return source.revision
        ref = self._ref(source)
        return ref.read_text().strip() if ref.is_file() else None

    def local(self, source: HubSource) -> list[Path] | None:
        """The model's files if pulled, without the network (None if not on disk)."""
        commit = self.local_commit(source)
        folder = self.repo_dir(source.repo) / commit if commit else None
        if folder is None or not folder.is_dir():
            return None
        present = [str(path.relative_to(folder)) for path in folder.rglob("*.gguf") if path.is_file()]
        try:
            return [folder / name for name in gguf_files(matching(present, source.pattern), str(source))]
        except HubError:
            return None

    def pulled(self) -> list[PulledFile]:
        """Every file under the hub folder, pulled or partly (``models list``)."""
        found = []
        for refs in sorted(self.root.glob("*/*/refs")):
            repo_dir = refs.parent
            names: dict[str, list[str]] = {}
            for ref in refs.iterdir():
                names.setdefault(ref.read_text().strip(), []).append(unquote(ref.name))
            for commit_dir in sorted(path for path in repo_dir.iterdir() if _COMMIT.match(path.name)):
                for file in sorted(commit_dir.rglob("*")):
                    if file.is_file() and not file.name.endswith(".lock"):
                        complete = not file.name.endswith(".partial")
                        path = str(file.relative_to(commit_dir)).removesuffix(".partial")
                        found.append(PulledFile(
                            f"{repo_dir.parent.name}/{repo_dir.name}", commit_dir.name, sorted(names.get(commit_dir.name, [])),
                            path, file.stat().st_size, complete, file,
                        ))
        return found

    def resolve(self, source: HubSource) -> Path:
        """The GGUF file to load (a split's first part): from disk, else pulled."""
        files = self.local(source) or self.pull(source)
        return files[0]

    def pull(self, source: HubSource, progress: bool = False) -> list[Path]:
        """Fetch the model's files (resuming partial ones) and verify them; returns them,
        first part first."""
        from huggingface_hub import HfApi, constants
        from huggingface_hub import errors as hub_errors

        if constants.HF_HUB_OFFLINE:
            raise HubError(f"{source} is not on disk and HF_HUB_OFFLINE is set: pull it first (llm-backend models pull)")
        api = HfApi()
        try:
            commit = api.repo_info(source.repo, revision=source.revision).sha
            listing = {
                entry.path: entry
                for entry in api.list_repo_tree(source.repo, revision=commit, recursive=True)
                if hasattr(entry, "size")
            }
        except hub_errors.RepositoryNotFoundError:
            raise HubError(f"{source}: no repository {source.repo!r} at {constants.ENDPOINT} (or it needs HF_TOKEN)") from None
        except hub_errors.RevisionNotFoundError:
            raise HubError(f"{source}: no revision {source.revision!r} in {source.repo}") from None
        except Exception as exc:  # unreachable, refused, timed out: say where, not the details of the stack
            raise HubError(f"{source} is not on disk and {constants.ENDPOINT} cannot be reached: {type(exc).__name__}: {exc}"[:500]) from None
        names = gguf_files(matching(list(listing), source.pattern), str(source))
        # The hub's answers become paths here: a commit id, and names inside the repo's folder.
        if commit is None or not _COMMIT.match(commit):
            raise HubError(f"{source}: the hub answered no commit id for {source.revision!r}: {commit!r}"[:300])
        for name in names:
            if PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
                raise HubError(f"{source}: the hub lists a file outside the repo: {name!r}"[:300])
        folder = self.repo_dir(source.repo) / commit
        files = [self._fetch(source, commit, listing[name], folder / name, progress) for name in names]
        ref = self._ref(source)
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
        return files

    def _fetch(self, source: HubSource, commit: str, entry, target: Path, progress: bool) -> Path:
        """One file, resumed from its ``.partial``, verified, then given its name."""
        from filelock import FileLock
        from huggingface_hub import hf_hub_url
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers
        from huggingface_hub.utils.tqdm import silent_tqdm

        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with FileLock(str(target.with_name(target.name + ".lock"))):  # another pull of it waits here
            if target.is_file():
                return target
            have = partial.stat().st_size if partial.is_file() else 0
            if have > entry.size:
                partial.unlink()
                have = 0
            log.info(
                "pulling model file",
                extra={"source": str(source), "file": entry.path, "bytes": entry.size, "resumed_at": have},
            )
            started = time.monotonic()
            url = hf_hub_url(source.repo, entry.path, revision=commit)
            try:
                with partial.open("ab") as out:
                    http_get(
                        url, _Bounded(out, entry.size),  # type: ignore[arg-type]  # a BinaryIO by delegation (__getattr__)
                        resume_size=have, headers=build_hf_headers(), expected_size=entry.size,
                        displayed_filename=entry.path if progress else None,
                        tqdm_class=None if progress else silent_tqdm,
                    )
            except _TooLong:
                partial.unlink()
                raise HubError(f"{source}: the hub sent more of {entry.path} than the {entry.size} bytes it lists; "
                               "the download was stopped there and removed") from None
            except Exception as exc:
                raise HubError(f"{source}: downloading {entry.path} failed ({type(exc).__name__}: {exc}); "
                               "what arrived is kept and the next pull resumes it"[:500]) from None
            digest = _sha256(partial)
            expected = entry.lfs.sha256 if entry.lfs is not None else None
            if expected is not None and digest != expected:
                partial.unlink()
                raise HubError(f"{source}: {entry.path} arrived with sha256 {digest}, not the hub's {expected}; removed")
            if expected is None and _git_blob_id(partial) != entry.blob_id:
                partial.unlink()
                raise HubError(f"{source}: {entry.path} does not match the hub's blob id {entry.blob_id}; removed")
            partial.replace(target)
            log.info(
                "pulled model file",
                extra={"source": str(source), "file": entry.path, "bytes": entry.size, "seconds": round(time.monotonic() - started, 2)},
            )
            return target


def _sha256(path: Path) -> str:
    return _digest(path, hashlib.sha256())


def _git_blob_id(path: Path) -> str:
    """git's id of a file's content (what the hub lists for files outside LFS)."""
    return _digest(path, hashlib.sha1(f"blob {path.stat().st_size}\0".encode()))


def _digest(path: Path, digest) -> str:
    with path.open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
