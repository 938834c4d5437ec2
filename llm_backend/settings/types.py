"""What the settings modules share: a list an environment variable gives as ``a,b,c``; URL
prefixes an operator lists (MCP servers, image URLs)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic_settings import NoDecode


def split_commas(value: Any) -> Any:
    """An environment variable's ``a,b,c`` as a list (a config file's lists pass as they are)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# Not JSON-decoded from the environment: split_commas reads it.
CommaList = Annotated[list[str], NoDecode]


def url_prefixes(prefixes: list[str], setting: str) -> list[str]:
    """``prefixes``, each an http(s) URL prefix with a host, else a ValueError naming ``setting``."""
    for prefix in prefixes:
        if not re.match(r"^https?://[^/?#@]+", prefix, re.IGNORECASE):
            raise ValueError(f"{setting}: {prefix!r} is not an http(s) URL prefix with a host")
    return prefixes
