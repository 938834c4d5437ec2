"""Images of a chat request named by an ``http(s)`` URL, downloaded (issue #60; images.py
checks what comes) under the MCP client's address rules, reused as they are
(``mcp/egress.ServerPolicy``, ``mcp/transport``): a URL under ``image_allowed_urls`` at any
address, any other only while ``image_public_urls`` is on and only at public addresses
(never loopback, private, link-local: the cloud metadata service), checked after DNS and
again at every redirect, the connection made to the address checked; compressed answers
refused (a small answer must not expand past the count). Within ``image_url_timeout`` in all
(a server that drips its bytes holds nothing longer), at most ``image_max_bytes`` counted as
they arrive. Each failure is a 400 naming the image's part (``invalid_image_url``): the URL
shown without its user, password or query.

Its own module, imported with the first download: the HTTP client's library is 0.1 s of a
start-up that has no use for it.
"""

from __future__ import annotations

import asyncio

import httpx2

from ... import errors
from ...mcp.egress import Refused, ServerPolicy, shown
from ...mcp.transport import Exchange, TooLarge, http_client
from ...mcp.values import ValueCount
from ...settings import Settings
from .images import ImageLimits, ImagePart


class _Bytes(Exchange):
    """A download's ``Exchange``: its bytes counted, no JSON values (an image is not JSON)."""

    def count(self, chunk: bytes, values: ValueCount) -> None:
        self.read += len(chunk)
        if self.read > self.max_bytes:
            self._over(f"more than {self.max_bytes} bytes", "image_max_bytes")


class ImageDownloads:
    """Downloads of images named by URL, under the settings' address rules."""

    def __init__(self, settings: Settings) -> None:
        self.policy = ServerPolicy(settings.image_allowed_urls, settings.image_public_urls)

    async def bytes_of(self, part: ImagePart, limits: ImageLimits, most: int) -> bytes:
        """The image at ``part.url``: at most ``most`` bytes, else a 400 naming the part."""
        exchange = _Bytes(most, 0)
        where = shown(part.url)
        try:
            async with asyncio.timeout(limits.url_timeout):
                async with http_client(self.policy, exchange, limits.url_timeout) as client:
                    async with client.stream("GET", part.url, follow_redirects=True) as response:
                        if response.status_code != 200:
                            raise errors.image_download_failed(part.param, where, f"HTTP {response.status_code}")
                        return b"".join([chunk async for chunk in response.aiter_raw()])
        except Refused:
            raise errors.image_download_failed(
                part.param, where, "its address is not one this service downloads images from (image_allowed_urls, "
                "else public addresses only)"
            ) from None
        except TooLarge:
            if exchange.too_large and most < limits.max_bytes:
                raise errors.images_too_large(part.param, limits.max_request_bytes) from None
            if exchange.too_large:
                raise errors.image_bytes_too_large(part.param, limits.max_bytes) from None
            raise errors.image_download_failed(part.param, where, "the server sent a compressed answer") from None
        except TimeoutError:
            raise errors.image_download_failed(part.param, where, f"it took more than {limits.url_timeout:g} s") from None
        except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as error:
            raise errors.image_download_failed(part.param, where, type(error).__name__) from None
