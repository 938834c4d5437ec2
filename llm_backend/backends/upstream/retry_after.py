"""How long an upstream's answer asks us to wait: what the client's retries and the pool's
cool-down both read. Apart from the client, so the pool needs no HTTP library loaded when
no upstream is configured."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds an answer asks us to wait: ``retry-after-ms`` (OpenAI's), or ``retry-after``
    in seconds or as an HTTP date (header names in lower case, or a case-blind mapping)."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None
