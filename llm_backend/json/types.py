"""The one name for a JSON object as Python holds it (a request body, an answer, an event,
a stored object's shape), so every module says ``Json`` for the same thing."""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]
