"""``llm-backend db …``, ``llm-backend keys …`` and ``llm-backend usage``: the database,
managed API keys and the usage they recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
keys_app = typer.Typer(help="Managed API keys (stored hashed), each of a project's service account.", no_args_is_help=True)

ConfigOption = typer.Option(None, "--config", help="YAML config file (else $LLM_BACKEND_CONFIG).")


def _database(config: Optional[Path], migrate: bool = True, revision: str = "head"):
    from .. import families
    from ..auth import audit_key
    from ..auth import KeyEntryError, Keyring
    from ..families.family import migrations
    from ..settings import Settings
    from ..storage import Database, default_url

    arguments: dict[str, Any] = {"config": config} if config else {}
    settings = Settings(**arguments)
    database = Database(
        settings.database_url or default_url(settings.data_dir), audit_key=audit_key.of(settings),
        migrations=migrations(families.FAMILIES),  # the families' revisions, in the one history
    )
    if migrate:
        # Static keys' positional owners are carried over by the settings' keys (0009).
        try:
            owners = Keyring.of(settings).legacy_owners()
        except KeyEntryError as exc:
            raise SystemExit(str(exc)) from None
        database.upgrade(revision, owners=owners)
    return database


@db_app.command("upgrade")
def db_upgrade(
    revision: str = typer.Argument("head", help="Target revision."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Apply the schema migrations (the server also does this at start-up), with the
    server's LLM_BACKEND_API_KEYS and LLM_BACKEND_ADMIN_KEYS: see docs/SECURITY.md."""
    database = _database(config, revision=revision)
    try:
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
    tpd: Optional[int] = typer.Option(None, min=1, help="Tokens per UTC day (default: unlimited)."),
    project: Optional[str] = typer.Option(
        None, help="The project whose objects the key reaches (default: a new project named like the key)."
    ),
    admin: bool = typer.Option(False, "--admin", help="An admin key (the organisation's: the Admin API, docs/ADMIN.md)."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Create a key (of a new service account named NAME, or with --admin an admin key) and
    print it. It is shown this once: only its sha256 digest is stored. Logged in the audit log."""
    if admin and (project or rpm or tpm or tpd):
        raise typer.BadParameter("an admin key has no project and no rate limits", param_hint="--admin")
    database = _database(config)
    try:
        if admin:
            info, key = database.api_keys.create_admin(name)
        else:
            info, key = database.api_keys.create(name, description, rpm=rpm, tpm=tpm, tpd=tpd, project_id=project)
    except LookupError:
        typer.echo(f"no active project with id {project}", err=True)
        raise typer.Exit(1) from None
    finally:
        database.dispose()
    typer.echo(f"id:  {info.id}", err=True)
    typer.echo(f"project:  {info.project_id or 'none (an admin key)'}", err=True)
    typer.echo(key)


@keys_app.command("list")
def keys_list(config: Optional[Path] = ConfigOption) -> None:
    """List keys (never the keys themselves): id, name, created, last used, state, project
    (``admin`` for an admin key), description, and the rate limits of those that have some."""
    database = _database(config)
    try:
        keys = database.api_keys.all()
    finally:
        database.dispose()
    for info in keys:
        last_used = info.last_used_at.isoformat(timespec="seconds") if info.last_used_at else "never"
        state = "revoked" if info.revoked else "active"
        created = info.created_at.isoformat(timespec="seconds")
        limits = "".join(f"\t{n} {unit}" for n, unit in ((info.rpm, "rpm"), (info.tpm, "tpm"), (info.tpd, "tpd")) if n)
        project = "admin" if info.admin else info.project_id
        typer.echo(f"{info.id}\t{info.name}\t{created}\t{last_used}\t{state}\t{project}\t{info.description}{limits}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key's id (from `keys list`)."), config: Optional[Path] = ConfigOption) -> None:
    """Revoke a key: it stops working at its next request; what it stored stays its project's."""
    database = _database(config)
    try:
        found = database.api_keys.revoke(key_id)
    finally:
        database.dispose()
    if not found:
        typer.echo(f"no key with id {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@keys_app.command("update")
def keys_update(
    key: str = typer.Argument(..., help="The key's id or name."),
    rpm: Optional[int] = typer.Option(None, min=0, help="Requests per minute (0: unlimited)."),
    tpm: Optional[int] = typer.Option(None, min=0, help="Tokens per minute (0: unlimited)."),
    tpd: Optional[int] = typer.Option(None, min=0, help="Tokens per UTC day (0: unlimited)."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Change a key's rate limits (those given; the others stay). Servers apply them at the
    key's next request."""
    from ..storage.api_keys import AmbiguousKey

    changes = {name: value or None for name, value in (("rpm", rpm), ("tpm", tpm), ("tpd", tpd)) if value is not None}
    if not changes:
        raise typer.BadParameter("give at least one of --rpm, --tpm, --tpd")
    database = _database(config)
    try:
        info = database.api_keys.update(key, **changes)
    except AmbiguousKey:
        typer.echo(f"several keys are named {key}: give the key's id (`keys list`)", err=True)
        raise typer.Exit(1) from None
    finally:
        database.dispose()
    if info is None:
        typer.echo(f"no key with id or name {key}", err=True)
        raise typer.Exit(1)
    limits = ", ".join(f"{unit} {n or 'unlimited'}" for n, unit in ((info.rpm, "rpm"), (info.tpm, "tpm"), (info.tpd, "tpd")))
    typer.echo(f"updated {info.id} ({info.name}): {limits}")


def _moment(text: str, now: float) -> int:
    """``7d``, ``12h``, ``30m`` (ago), Unix seconds, or an ISO date/time (UTC unless it says)."""
    from datetime import datetime, timezone

    units = {"m": 60, "h": 3600, "d": 86400}
    if text[:-1].isdigit() and text[-1:] in units:
        return int(now - int(text[:-1]) * units[text[-1]])
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not a time: {text!r} (7d, 12h, 30m, Unix seconds or an ISO date)") from None
    return int((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())


def usage(
    since: str = typer.Option("7d", help="From: 7d, 12h, 30m ago, Unix seconds or an ISO date (UTC)."),
    until: Optional[str] = typer.Option(None, help="Until (exclusive; default: now), same forms."),
    config: Optional[Path] = ConfigOption,
) -> None:
    """Tokens used per key and model over a period (what OpenAI's usage operations serve).
    A running server writes its accounting every few seconds (``usage_flush_seconds``)."""
    import time

    now = time.time()
    start, end = _moment(since, now), (_moment(until, now) if until else int(now) + 1)
    database = _database(config)
    try:
        totals = database.usage.totals(start, end, group_by=("api_key_id", "operation", "model"))
        names = database.api_keys.names()
    finally:
        database.dispose()
    typer.echo("key\toperation\tmodel\trequests\tinput_tokens\toutput_tokens\tkey_name")
    for row in totals:
        key = row.group["api_key_id"]
        typer.echo(
            f"{key}\t{row.group['operation']}\t{row.group['model']}\t{row.requests}\t{row.input_tokens}"
            f"\t{row.output_tokens}\t{names.get(key, '')}"
        )
