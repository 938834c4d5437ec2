"""``llm-backend db …`` and ``llm-backend keys …``: the database and managed API keys."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Managed API keys (stored hashed).", no_args_is_help=True)

ConfigOption = typer.Option(None, "--config", help="YAML config file (else $LLM_BACKEND_CONFIG).")


def _database(config: Optional[Path], migrate: bool = True):
    from ..settings import Settings
    from ..storage import Database, default_url

    settings = Settings(**({"config": config} if config else {}))
    database = Database(settings.database_url or default_url(settings.data_dir))
    if migrate:
        database.upgrade()
    return database


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Target revision."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Apply the schema migrations (the server also does this at start-up)."""
    database = _database(config, migrate=False)
    try:
        database.upgrade(revision)
        typer.echo(f"database at revision {database.revision()}")
    finally:
        database.dispose()


@db_app.command("current")
def db_current(config: Optional[Path] = ConfigOption) -> None:
    """Print the schema revision of the database."""
    database = _database(config, migrate=False)
    try:
        typer.echo(database.revision() or "none")
    finally:
        database.dispose()


@keys_app.command("create")
def keys_create(
    name: str = typer.Option(..., help="A name to recognise the key by."),
    description: str = typer.Option("", help="What the key is for."),
    rpm: Optional[int] = typer.Option(None, min=1, help="Requests per minute (default: unlimited)."),
    tpm: Optional[int] = typer.Option(None, min=1, help="Tokens per minute (default: unlimited)."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Create a key and print it. It is shown this once: only its sha256 digest is stored."""
    database = _database(config)
    try:
        info, key = database.api_keys.create(name, description, rpm=rpm, tpm=tpm)
    finally:
        database.dispose()
    typer.echo(f"id:  {info.id}", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list(config: Optional[Path] = ConfigOption) -> None:
    """List keys (never the keys themselves): id, name, created, last used, state, description,
    and the rate limits of those that have some."""
    database = _database(config)
    try:
        keys = database.api_keys.all()
    finally:
        database.dispose()
    for info in keys:
        last_used = info.last_used_at.isoformat(timespec="seconds") if info.last_used_at else "never"
        state = "revoked" if info.revoked else "active"
        created = info.created_at.isoformat(timespec="seconds")
        limits = "".join(f"\t{n} {unit}" for n, unit in ((info.rpm, "rpm"), (info.tpm, "tpm")) if n)
        typer.echo(f"{info.id}\t{info.name}\t{created}\t{last_used}\t{state}\t{info.description}{limits}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (from `keys list`)."), config: Optional[Path] = ConfigOption) -> None:
    """Revoke a key: it stops working within seconds; what it stored stays with it."""
    database = _database(config)
    try:
        found = database.api_keys.revoke(key_id)
    finally:
        database.dispose()
    if not found:
        typer.echo(f"no key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")
