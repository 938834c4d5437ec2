"""The ``llm-backend`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from .audit import audit_app
from .models import models_app
from .storage import db_app, keys_app, usage

app = typer.Typer(help="An OpenAI-compatible API service.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
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
    from .. import off_loop

    off_loop.starting()  # the collector back on once the app is ready (off_loop.settle)
    import uvicorn

    from .. import logs
    from ..auth import KeyEntryError, Keyring
    from ..http.socket_deadline import deadlined_protocol
    from ..http.starting import Starting
    from ..settings import Settings

    overrides: dict[str, Any] = {key: value for key, value in {"config": config, "host": host, "port": port}.items() if value}
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
            timeout_graceful_shutdown=settings.shutdown_grace,  # type: ignore[arg-type]  # seconds: uvicorn says int, hands it to asyncio.wait_for (a float)
            # A WebSocket message (a Responses ``response.create``) is a body like any other:
            # the same size limit, and the same deadline for its fragments to arrive.
            ws_max_size=settings.max_body_bytes,
            ws=deadlined_protocol(settings.body_timeout, settings.body_min_rate),
        )
    )
    server.run()
    if shell.failed is not None:
        raise typer.Exit(3)  # uvicorn's own status for a failed start


if __name__ == "__main__":
    app()
