"""What a controller may use: the settings, the model registry and the database.

Built once per app and handed to every request through the ASGI lifespan state.
"""

from __future__ import annotations

from dataclasses import dataclass

from connexion import request

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
