"""One storage convention (issue #48, ``storage/__init__.py`` says why): stores are
synchronous, callers on the event loop run their methods with ``await database.run(...)``,
and controllers never reach the database (serving/ does, in functions named for what they do)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "llm_backend"
STORAGE = PACKAGE / "storage"
# The only coroutines of storage/: the worker-thread door, and the fronts that answer from
# memory so that most calls cost no hop (a cache, a buffer, ids no upstream object can have).
FRONTS = {
    "__init__.py": {"Database.run", "Database.ping"},
    "admin_snapshot.py": {"AdminSnapshot.current"},
    "handle.py": {"SettingsCache.current"},  # the Protocol of AdminSnapshot.current
    "projects.py": {"ProjectStore.archived"},
    "api_keys.py": {
        "ApiKeyStore.authenticate", "ApiKeyStore.authenticate_digest", "ApiKeyStore.authenticate_id",
        "ApiKeyStore._found", "ApiKeyStore.any_created",
    },
    "usage.py": {"UsageStore.flush", "UsageStore.totals_now", "UsageStore._flush_forever", "UsageStore.stop"},
    "forwarded_objects.py": {"ForwardedObjects.owners", "ForwardedObjects.claim", "ForwardedObjects.forget"},
}


def _coroutines(path: Path) -> dict[str, ast.AsyncFunctionDef]:
    found = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.AsyncFunctionDef):
            found[node.name] = node
        elif isinstance(node, ast.ClassDef):
            found.update({f"{node.name}.{item.name}": item for item in node.body if isinstance(item, ast.AsyncFunctionDef)})
    return found


def _storage_modules() -> list[Path]:
    """The core's stores and each family's (``families/<name>/store.py``)."""
    core = [path for path in sorted(STORAGE.rglob("*.py")) if "migrations" not in path.parts]
    return core + sorted(PACKAGE.glob("families/*/store.py"))


def test_stores_are_synchronous_but_for_the_named_fronts():
    unexpected = {
        f"{_named(path)}:{name}"
        for path in _storage_modules()
        for name in _coroutines(path)
        if name not in FRONTS.get(_named(path), set())
    }
    assert unexpected == set(), "a store method is sync; call it with `await database.run(store.method, ...)`"


def test_the_fronts_never_open_a_session_on_the_loop():
    for module, names in FRONTS.items():
        coroutines = _coroutines(STORAGE / module)
        for name in names:
            uses = {node.attr for node in ast.walk(coroutines[name]) if isinstance(node, ast.Attribute)}
            assert not uses & {"sessions", "engine", "connect", "execute"}, f"{module}:{name} queries on the event loop"


def test_stores_never_import_the_package_that_builds_them():
    for path in _storage_modules():
        if path.name == "__init__.py" or path.parent != STORAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
                assert "Database" not in {alias.name for alias in node.names}, f"{path.name} imports Database: type it as handle.DatabaseHandle"


def _named(path: Path) -> str:
    return str(path.relative_to(STORAGE if path.is_relative_to(STORAGE) else PACKAGE))


def test_controllers_never_reach_the_database():
    for path in sorted((PACKAGE / "controllers").rglob("*.py")) + sorted(PACKAGE.glob("families/*/controller.py")):
        tree = ast.parse(path.read_text())
        reached = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "database"]
        named = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == "database"]
        assert reached + named == [], f"{path.relative_to(PACKAGE)} reaches the database (lines {reached + named}): a serving/ function does"
