"""The ``llm-backend`` command line (rank 5; ``python -m llm_backend`` too: ``__main__.py``).

- ``main.py``: the command (typer), and ``serve``: uvicorn listening at once, the app built in
  the background (``http/starting.py``);
- ``models.py``: ``models fetch``, ``pull``, ``list``: the models' files on disk, fetched ahead
  of time or pulled by name (docs/MODELS.md);
- ``storage.py``: ``db upgrade`` (the core's migrations and the families'), ``keys create
  [--project] [--admin]``, ``list``, ``update``, ``revoke``, and ``usage``;
- ``audit.py``: ``audit verify``: the audit log's chain checked under its key, naming the first
  entry altered, removed or inserted; read-only (docs/ADMIN.md).
"""

from .main import app

__all__ = ["app"]
