"""docs/ARCHITECTURE.md stays true: every path it names exists, and every package of
``llm_backend/`` has its mention. Modules are renamed and split often; a map that names a
module gone, or leaves a package out, sends a newcomer the wrong way, so it is checked.

How the document writes paths, and so how they are read here: relative to ``llm_backend/``
(``http/pages.py``), to the repository (``openapi/openai.yaml``, ``tests/e2e/``), or to a
folder named before it in the same table row, paragraph or diagram line (``backends/registry.py,
pool.py``; ``backends/llama/`` then ``engine/`` then ``batching.py``). A path may end in a
name inside the module (``http/rendering.error_response``). Placeholders (``<tag>``) and
globs (``*_settings.py``) are not paths.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "llm_backend"
DOC = ROOT / "docs" / "ARCHITECTURE.md"

_QUOTED = re.compile(r"`([^`]+)`")
# In a diagram, a path is a bare word: a module (``.py``) or a folder (``/``), not a URL path.
_BARE = re.compile(r"(?<![\w*./<>-])([A-Za-z_]\w*(?:/\w+)*(?:\.py\b|/(?![\w/])))")
_DOCS = re.compile(r"(?<![\w/])(docs/[A-Z_]+\.md)")


def _units() -> list[tuple[str, bool]]:
    """The document as the units a relative path is read in: each table row, each
    paragraph, each line of a diagram (with whether it is one: its words are paths)."""
    units: list[tuple[str, bool]] = []
    paragraph: list[str] = []
    fenced = False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            units.append((" ".join(paragraph), False))
            paragraph = []
        elif fenced:
            units.append((line, True))
        elif line.startswith("|"):
            units.append((line, False))
        elif not line.strip():
            units.append((" ".join(paragraph), False))
            paragraph = []
        else:
            paragraph.append(line)
    units.append((" ".join(paragraph), False))
    return [unit for unit in units if unit[0].strip()]


def _pathlike(token: str) -> str | None:
    """The path a quoted token names, or None when it names none (a URL path, a placeholder,
    an identifier)."""
    if token.startswith("/") or any(mark in token for mark in "<>* ?=") or not re.fullmatch(r"[\w./-]+", token):
        return None
    if token.endswith(("/", ".py")):
        return token
    if "/" not in token:
        return None
    folder, _, last = token.rpartition("/")
    if "." in last and not last.endswith((".yaml", ".yml", ".md", ".toml", ".json")):
        return f"{folder}/{last.split('.')[0]}.py"  # a name inside a module: the module
    return token


def _resolve(path: str, bases: list[Path]) -> Path | None:
    for base in reversed(bases):
        found = base / path
        if found.exists():
            return found
    return None


def _named() -> list[tuple[str, Path | None]]:
    """Each path named by the document, and what it resolves to (None: nothing)."""
    named = []
    for text, diagram in _units():
        bases = [ROOT, PACKAGE]
        tokens = _BARE.findall(text) if diagram else [t for t in map(_pathlike, _QUOTED.findall(text)) if t]
        tokens += _DOCS.findall(text)
        for token in tokens:
            found = _resolve(token, bases)
            named.append((token, found))
            if found is not None:
                folder = found if found.is_dir() else found.parent
                if folder not in bases:
                    bases.append(folder)
    return named


def _packages() -> list[Path]:
    """Every folder of ``llm_backend/`` holding Python modules, ``__init__.py`` or not
    (``backends/upstream/`` has none), the migrations aside (Alembic's)."""
    folders = {path.parent for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
    return sorted(folder for folder in folders if folder != PACKAGE)


def test_the_document_names_paths_at_all():
    # The reader below must keep finding them: a change of the document's style would
    # otherwise pass every check with nothing checked.
    assert len({found for _, found in _named() if found is not None}) > 150


@pytest.mark.parametrize("token", sorted({token for token, found in _named() if found is None}) or ["(none)"])
def test_every_path_named_exists(token):
    assert token == "(none)", f"docs/ARCHITECTURE.md names {token!r}, which is not in the tree (renamed? moved?)"


def test_every_package_has_its_mention():
    mentioned = {found for _, found in _named() if found is not None and found.is_dir()}
    missing = [str(folder.relative_to(PACKAGE)) + "/" for folder in _packages() if folder not in mentioned]
    assert not missing, f"packages docs/ARCHITECTURE.md does not name: {missing}"
