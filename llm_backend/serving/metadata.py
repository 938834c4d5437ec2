"""``metadata`` of stored objects: OpenAI's limits (the spec states them only in prose), and
text every database can hold (``storage/storable.py``), checked before anything runs."""

from __future__ import annotations

from typing import Any

from ..errors import bad_request
from ..storage.storable import problem

# OpenAI's limits for metadata (the spec states them only in prose).
METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512


def check_metadata(metadata: Any, param: str = "metadata") -> dict[str, str]:
    """``metadata`` if it is within OpenAI's limits, else a 400 naming what is wrong."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise bad_request(f"Invalid type for '{param}': expected an object.", param, "invalid_type")
    if len(metadata) > METADATA_MAX_PAIRS:
        raise bad_request(
            f"Invalid '{param}': too many properties. Expected an object with at most "
            f"{METADATA_MAX_PAIRS} properties, but got an object with {len(metadata)} properties instead.",
            param,
            "object_above_max_properties",
        )
    for key, value in metadata.items():
        if not isinstance(value, str):
            raise bad_request(f"Invalid type for '{param}.{key}': expected a string.", f"{param}.{key}", "invalid_type")
        if problem(key, None) or problem(value, None):
            raise bad_request(
                f"Invalid '{param}': keys and values must be valid Unicode text without NUL characters.",
                param,
                "invalid_value",
            )
        if len(key) > METADATA_MAX_KEY:
            raise bad_request(
                f"Invalid '{param}': key too long. Expected keys of at most {METADATA_MAX_KEY} "
                f"characters, but got a key with length {len(key)} instead.",
                param,
                "string_above_max_length",
            )
        if len(value) > METADATA_MAX_VALUE:
            raise bad_request(
                f"Invalid '{param}.{key}': string too long. Expected a string with maximum length "
                f"{METADATA_MAX_VALUE}, but got a string with length {len(value)} instead.",
                f"{param}.{key}",
                "string_above_max_length",
            )
    return metadata
