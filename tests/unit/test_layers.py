"""The layers of the package import only downwards, and only the web layers know the web
framework: the folder layout is the architecture (docs/ARCHITECTURE.md), checked here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "llm_backend"
# Higher imports lower, never the other way round; equal ranks may import each other.
RANKS = {
    "app": 5,
    "cli": 5,
    "__main__": 5,
    "controllers": 4,
    "spec": 4,
    "http": 3,
    "serving": 2,
    "backends": 1,
    "retrieval": 1,
    "moderation": 1,
    "mcp": 1,
    "storage": 0,
    "auth": -1,
    "errors": -1,
    "budgets": -1,
    "json_scan": -1,
    "json_text": -1,
    "json_types": -1,
    "off_loop": -1,
    "openai_tokens": -1,
    "client_secrets": -1,
    "audit_key": -1,
    "settings": -1,
    "model_settings": -1,
    "model_shapes": -1,
    "audio_settings": -1,
    "realtime_settings": -1,
    "admin_settings": -1,
    "setting_types": -1,
    "logs": -1,
}
WEB_FRAMEWORK = ("connexion", "starlette", "sse_starlette", "uvicorn")
WEB_RANK = 3


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
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
            names.append(target)
            names += [f"{target}.{alias.name}" for alias in node.names if target == "llm_backend"]
    return names


MODULES = [(module, path) for module, path in _modules() if module != "llm_backend"]


def test_every_module_has_a_layer():
    assert {_layer(module) for module, _ in MODULES} <= set(RANKS)


@pytest.mark.parametrize("module, path", MODULES, ids=[module for module, _ in MODULES])
def test_a_module_imports_no_layer_above_its_own(module, path):
    rank = RANKS[_layer(module)]
    above = [
        name
        for name in _imports(module, path)
        if name.startswith("llm_backend.") and RANKS.get(_layer(name), -1) > rank
    ]
    assert above == []


@pytest.mark.parametrize("module, path", MODULES, ids=[module for module, _ in MODULES])
def test_only_the_web_layers_import_the_web_framework(module, path):
    if RANKS[_layer(module)] >= WEB_RANK:
        return
    framework = [name for name in _imports(module, path) if name.split(".")[0] in WEB_FRAMEWORK]
    assert framework == []
