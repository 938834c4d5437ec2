"""What the settings modules share: a list an environment variable gives as ``a,b,c``."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic_settings import NoDecode


def split_commas(value: Any) -> Any:
    """An environment variable's ``a,b,c`` as a list (a config file's lists pass as they are)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


# Not JSON-decoded from the environment: split_commas reads it.
CommaList = Annotated[list[str], NoDecode]
