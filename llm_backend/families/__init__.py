"""The families, registered (rank 5): ``FAMILIES``, one line each. ``family.py`` says what a
family is (``Family``, every part optional); docs/FAMILIES.md how to add one, with its worked
example. The app reads every part of a family from here and names none (``app/``); nothing
but this registry imports a family, and no family imports another
(``tests/unit/test_layers.py``).

A family that has moved in is a folder, its files by role, each at its layer's rank
(``__init__.py``, its ``FAMILY``: 5; ``controller.py``, ``document.py``: 4; ``middleware.py``:
3; ``serving.py`` or ``serving/``: 2; ``backend.py``: 1; ``store.py``, ``migrations/``: 0;
``settings.py``, ``errors.py``: -1):

- ``messages/``: Anthropic's Messages API and Message Batches (docs/MESSAGES.md).

One whose parts are still in the layers' folders is a module here, its registration pointing
at them: ``retrieval.py`` (vector stores, ``file_search``), ``responses.py``, ``batches.py``,
``uploads.py``, ``admin.py`` (the control plane), ``realtime.py``.

Their order is the order they are prepared, their tasks start, their middleware, sockets and
pages are added; they stop in the reverse order. The toy family
(``tests/fixtures/toy_family/``, ``tests/unit/test_toy_family.py``) proves the recipe: its
folder and one line here.
"""

from __future__ import annotations

from . import admin, batches, messages, realtime, responses, retrieval, uploads
from .family import Family

FAMILIES: tuple[Family, ...] = (
    retrieval.FAMILY,
    responses.FAMILY,
    batches.FAMILY,
    uploads.FAMILY,
    admin.FAMILY,
    realtime.FAMILY,
    messages.FAMILY,
)
