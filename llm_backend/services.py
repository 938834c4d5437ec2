"""What a controller may use: the settings, the model registry and the database.

Built once per app and handed to every request through the ASGI lifespan state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connexion import request
from connexion.context import context

from .backends.registry import ModelRegistry
from .settings import Settings
from .storage import Database


@dataclass
class Services:
    settings: Settings
    registry: ModelRegistry
    database: Database


def current() -> Services:
    """The services of the app serving the current request."""
    return request.state.services


def current_owner() -> str:
    """Who owns what the current request stores: the ``sub`` the security handler set."""
    return context["user"]


_METADATA_PARAM = re.compile(r"^metadata\[(.+)\]$")


def query_metadata() -> dict[str, str]:
    """``metadata[key]=value`` query parameters (a deepObject the spec does not declare as one)."""
    pairs = {}
    for name, value in request.query_params.multi_items():
        match = _METADATA_PARAM.match(name)
        if match:
            pairs[match.group(1)] = value
    return pairs
