"""What one image of a chat request to a local vision model may be, and where an image named
by URL may be downloaded from (issue #60; backends/llama/images.py checks them). Part of
``Settings`` (settings.py), kept apart by noun.

The defaults bound the memory an image costs, not only its bytes: the engine's worker decodes
an image whole (RGBA, 4 bytes a pixel) before its projector scales it down, so 33.5 megapixels
(8192 x 4096, a phone's 50 MP photo is past it) is at most 128 MiB in a worker whose ceiling
is ``worker_memory_mb`` (1536); the engine's own second look refuses past 40 MP. A side of
16,384 pixels is WebP's own largest plus one and lets long screenshots through. The bytes are
OpenAI's: 20 MB an image, 50 MB a request's images together; OpenAI takes up to 500 images a
request, a local model 16: each costs its projector's encode (SmolVLM-256M: 17 tiles, about
3.5 s a tile on one of this machine's cores) and its tokens in the context, and a list of
tiny images is as many encodes as a list of large ones. A data URL arrives in the body, so
``max_body_bytes`` (8 MiB) bounds it first: raise both to take OpenAI's 20 MB in a data URL.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator

from .types import CommaList, split_commas, url_prefixes


class ImageSettings(BaseModel):
    image_max_bytes: int = Field(
        20 * 1024 * 1024, ge=1024, description="bytes of one image in a chat request (a data URL's decoded, a download's)"
    )
    image_max_request_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="bytes of all the images of one request together (OpenAI's 50 MB)"
    )
    image_max_pixels: int = Field(
        8192 * 4096, ge=1, description="width x height of one image, read from its header before anything decodes it"
    )
    image_max_side: int = Field(16384, ge=1, description="pixels of one image's longer side")
    image_max_count: int = Field(16, ge=1, description="images of one chat request (each is an encode of the projector)")
    image_urls: bool = Field(
        True, description="download http(s) image URLs of chat requests (else 400: send a data URL)"
    )
    image_allowed_urls: CommaList = Field(
        [], description="URL prefixes of images downloaded at any address (private ones too), as mcp_allowed_servers"
    )
    image_public_urls: bool = Field(
        True, description="download other image URLs when every address they resolve to is public"
    )
    image_url_timeout: float = Field(30.0, gt=0, description="seconds one image download may take, connecting included")

    _split_images = field_validator("image_allowed_urls", mode="before")(split_commas)

    @field_validator("image_allowed_urls")
    @classmethod
    def _image_prefixes(cls, prefixes: list[str]) -> list[str]:
        return url_prefixes(prefixes, "image_allowed_urls")
