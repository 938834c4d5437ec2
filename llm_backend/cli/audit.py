"""``llm-backend audit verify``: the audit log's chain checked (storage/audit_chain.py) under
the key the service seals it with (``audit_log_key`` or the data directory's key, the same
settings as ``serve``). Read-only: it never migrates the database it checks."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .storage import ConfigOption, _database

audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(config: Optional[Path] = ConfigOption) -> None:
    """Walk the audit log's chain: print OK, the entries' count and the head (keep it: the
    newest entries removed together show only against a head kept elsewhere), or name the
    first entry altered, removed or inserted without the key and exit 1."""
    from ..storage.migrate import HEAD

    database = _database(config, migrate=False)
    try:
        revision = database.revision()
        if revision != HEAD:
            typer.echo(f"the database is at revision {revision or 'none'}, not {HEAD}: run `llm-backend db upgrade`", err=True)
            raise typer.Exit(2)
        verdict = database.audit_log.verify()
    finally:
        database.dispose()
    if verdict.broken is not None:
        broken = verdict.broken
        typer.echo(f"audit log BROKEN at entry {broken.id} (seq {broken.seq}, entry {verdict.count} of the log): {broken.reason}", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit log OK: {verdict.count} entries, head {verdict.head or 'none'}")
