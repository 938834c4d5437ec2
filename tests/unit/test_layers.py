"""The layers of the package import only downwards, and only the web layers know the web
framework: the folder layout is the architecture (docs/ARCHITECTURE.md), checked here, file
by file.

A family in a folder of its own (``llm_backend/families/<name>/``, docs/FAMILIES.md) holds
pieces of several layers: each file takes the rank of its role, said by its name (``ROLES``:
``controller.py`` a controller's, ``serving/`` serving's, ``store.py`` storage's...), and its
``__init__.py`` (its registration) the app's. Families plug into the core, never the other
way round: only the registry (``families/__init__.py``) imports a family, no family imports
another, and the app names none.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from llm_backend.families import FAMILIES

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "llm_backend"
# The toy family (tests/fixtures/toy_family/) keeps the convention too: it is the recipe.
TOY = ROOT / "tests" / "fixtures" / "toy_family"
# Higher imports lower, never the other way round; equal ranks may import each other.
RANKS = {
    "app": 5,
    "cli": 5,
    "__main__": 5,
    "families": 5,  # the registry, the ``Family`` type, the families still spread over the layers
    "controllers": 4,
    "spec": 4,
    "http": 3,
    "serving": 2,
    "backends": 1,
    "retrieval": 1,
    "moderation": 1,
    "mcp": 1,
    "storage": 0,
    "auth": -1,  # keys and secrets: principals, the audit log's key, Realtime client secrets
    "errors": -1,
    "json": -1,
    "settings": -1,
    "budgets": -1,
    "off_loop": -1,
    "openai_tokens": -1,
    "logs": -1,
}
# A family folder's files by role: a module, or a folder of them, named for it -> its layer.
ROLES = {
    "__init__": "app",  # its registration (``FAMILY``): wires its parts as the app does
    "controller": "controllers",
    "document": "spec",
    "middleware": "http",
    "serving": "serving",
    "backend": "backends",
    "store": "storage",
    "migrations": "storage",
    "settings": "settings",
    "errors": "errors",
}
WEB_FRAMEWORK = ("connexion", "starlette", "sse_starlette", "uvicorn")
WEB_RANK = 3
FAMILY_PACKAGE = "llm_backend.families"
TOY_PACKAGE = "tests.fixtures.toy_family"


def _folder_family(module: str) -> tuple[str, list[str]] | None:
    """(the family's package, the module's parts below it) when ``module`` lies in a
    family's folder: ``llm_backend.families.<name>.…`` for a folder, or the toy family."""
    if module == TOY_PACKAGE or module.startswith(TOY_PACKAGE + "."):
        return TOY_PACKAGE, module.split(".")[3:]
    parts = module.split(".")
    if module.startswith(FAMILY_PACKAGE + ".") and (PACKAGE / "families" / parts[2]).is_dir():
        return ".".join(parts[:3]), parts[3:]
    return None


def _layer(module: str) -> str | None:
    """The layer ``module`` belongs to (None: none of ``RANKS``, or a role not in ``ROLES``)."""
    family = _folder_family(module)
    if family is not None:
        inner = family[1]
        return ROLES.get(inner[0] if inner else "__init__")
    return module.split(".")[1] if module.count(".") else "__init__"


def _rank(module: str) -> int:
    return RANKS[_layer(module)]


def _modules() -> list[tuple[str, Path]]:
    found = []
    for root in (PACKAGE, TOY):
        for path in sorted(root.rglob("*.py")):
            if path.is_relative_to(PACKAGE / "storage" / "migrations"):
                continue  # the core's Alembic environment and revisions (a family's are its storage's)
            parts = path.relative_to(PACKAGE.parent if root == PACKAGE else ROOT).with_suffix("").parts
            found.append((".".join(parts[:-1] if parts[-1] == "__init__" else parts), path))
    return found


def _imports(module: str, path: Path) -> list[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module
            # ``from package import module`` imports the module (the package's own code only
            # when a name is not one: as test_import_circles.py reads it).
            modules = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in NAMES]
            names += modules if len(modules) == len(node.names) else [target, *modules]
    return names


def _ours(name: str) -> bool:
    return name.startswith("llm_backend.") or name == TOY_PACKAGE or name.startswith(TOY_PACKAGE + ".")


def _family_of(module: str) -> str | None:
    """The family ``module`` is part of (its package or registration module), if any:
    ``llm_backend.families.<name>`` but for the registry and the ``Family`` type."""
    if module == TOY_PACKAGE or module.startswith(TOY_PACKAGE + "."):
        return TOY_PACKAGE
    parts = module.split(".")
    if module.startswith(FAMILY_PACKAGE + ".") and parts[2] != "family":
        return ".".join(parts[:3])
    return None


NAMES = {module for module, _ in _modules()}
MODULES = [(module, path) for module, path in _modules() if module != "llm_backend"]


def test_every_module_has_a_layer():
    assert [module for module, _ in MODULES if _layer(module) not in RANKS] == []


def test_a_role_names_its_layers_rank():
    # What the convention means, spelled out once (docs/FAMILIES.md repeats it).
    ranks = {role: RANKS[layer] for role, layer in ROLES.items()}
    assert ranks == {"__init__": 5, "controller": 4, "document": 4, "middleware": 3, "serving": 2, "backend": 1,
                     "store": 0, "migrations": 0, "settings": -1, "errors": -1}
    assert _rank("llm_backend.families.messages.serving.service") == 2
    assert _rank("tests.fixtures.toy_family.store") == 0
    assert _layer("llm_backend.families.messages.reasons") is None  # no role: no layer


@pytest.mark.parametrize("module, path", MODULES, ids=[module for module, _ in MODULES])
def test_a_module_imports_no_layer_above_its_own(module, path):
    rank = _rank(module)
    above = [name for name in _imports(module, path) if _ours(name) and _layer(name) in RANKS and _rank(name) > rank]
    assert above == []


@pytest.mark.parametrize("module, path", MODULES, ids=[module for module, _ in MODULES])
def test_only_the_web_layers_import_the_web_framework(module, path):
    if _rank(module) >= WEB_RANK:
        return
    framework = [name for name in _imports(module, path) if name.split(".")[0] in WEB_FRAMEWORK]
    assert framework == []


@pytest.mark.parametrize("module, path", MODULES, ids=[module for module, _ in MODULES])
def test_only_the_registry_imports_a_family(module, path):
    """A family's parts are its own: the registry imports it, nothing else outside it does."""
    if module == FAMILY_PACKAGE:
        return
    own = _family_of(module)
    foreign = [name for name in _imports(module, path) if _family_of(name) not in (None, own)]
    assert foreign == []


def _families() -> list:
    """Every registered family (``FAMILIES``: in a folder of its own or still spread over the
    layers), and the toy family."""
    return [*FAMILIES, importlib.import_module(TOY_PACKAGE).FAMILY]


def _words(family) -> set[str]:
    """What names a family: its name, its tags, the upstream kinds it brings."""
    return {family.name.lower(), *(tag.lower() for tag in family.controllers), *family.upstreams}


@pytest.mark.parametrize("family", _families(), ids=lambda family: family.name)
def test_the_app_names_no_family(family):
    """``app/`` reads every part of a family from the registry: no word of one in its code
    or its comments, whether the family lives in a folder of its own or is still spread."""
    named = {
        f"app/{path.name}:{number}: {word}"
        for path in sorted((PACKAGE / "app").glob("*.py"))
        for number, line in enumerate(path.read_text().lower().splitlines(), 1)
        for word in _words(family)
        if re.search(rf"\b{re.escape(word)}\b", line)
    }
    assert named == set()


def test_the_top_level_holds_at_most_eight_loose_modules():
    """The folders are the architecture (issue #58): what is loose at the top is the few
    cross-cutting pieces that belong to no folder, not a second layout beside them."""
    loose = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(loose) <= 8, loose


def test_no_module_passes_400_lines():
    """A module past ~400 lines has taken on a second job (../shared/STYLE.md)."""
    long = {str(path.relative_to(PACKAGE)): n for _, path in _modules() if (n := len(path.read_text().splitlines())) > 400}
    assert long == {}, long
