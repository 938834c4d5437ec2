"""The families, registered: ``FAMILIES``, one line each (``family.py`` says what a family
is; docs/FAMILIES.md how to add one). The app reads every part of a family from here and
names none (``app/``); nothing but this registry imports a family.

A family that has moved in is a folder (``messages/``: everything it is, in one place). One
whose parts are still in the layers' folders is a module here (``retrieval.py``...), its
registration pointing at them. Their order is the order they are prepared, their tasks
start, their middleware, sockets and pages are added; they stop in the reverse order."""

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
