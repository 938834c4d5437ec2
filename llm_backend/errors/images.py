"""Errors naming one image of a chat request (issue #60: backends/llama/images.py), each a 400
whose ``param`` is the image's part (``messages[1].content[0].image_url``), worded as OpenAI
words them where it refuses the same thing: an unsupported format (``invalid_image_format``),
bytes that are no image (``image_parse_error``), a data URL that is not one
(``invalid_value``), a download that failed (``invalid_image_url``). OpenAI scales a large
image down rather than refuse it; a local server refuses one past its pixels before anything
decodes it (``image_too_large``: ours), and counts a request's images (``too_many_images``).
"""

from __future__ import annotations

from .error import OpenAIError, bad_request

IMAGE_FORMATS = ("png", "jpeg", "gif", "webp")


def unsupported_image(param: str) -> OpenAIError:
    # OpenAI's words, its grammar included.
    return bad_request(
        f"You uploaded an unsupported image. Please make sure your image has of one the following formats: "
        f"{list(IMAGE_FORMATS)}.",
        param,
        "invalid_image_format",
    )


def unparsable_image(param: str) -> OpenAIError:
    return bad_request("You uploaded an unsupported image. Please make sure your image is valid.", param, "image_parse_error")


def image_bytes_too_large(param: str, limit: int) -> OpenAIError:
    """More bytes than ``image_max_bytes``: refused by the data URL's length, before decoding it,
    or as a download's bytes pass it."""
    return bad_request(
        f"You uploaded an unsupported image. Please make sure your image is below {limit / 1_000_000:g} MB in size "
        f"and is of one the following formats: {list(IMAGE_FORMATS)}.",
        param,
        "invalid_image_format",
    )


def image_too_large(param: str, size: str, max_pixels: int, max_side: int) -> OpenAIError:
    """``size``: what its header says ("20000x20000")."""
    return bad_request(
        f"Invalid '{param}': the image is {size} pixels; an image can have at most {max_pixels} pixels "
        f"(width x height) and {max_side} on a side. Send it scaled down.",
        param,
        "image_too_large",
    )


def images_too_large(param: str, limit: int) -> OpenAIError:
    return bad_request(
        f"Invalid '{param}': the request's images are more than {limit} bytes together. Send fewer or smaller images.",
        param,
        "image_too_large",
    )


def too_many_images(param: str, limit: int) -> OpenAIError:
    """``param``: the first image past ``limit``."""
    return bad_request(
        f"Invalid '{param}': too many images. A request can hold at most {limit} images.", param, "too_many_images"
    )


def invalid_image_data_url(param: str, got: str) -> OpenAIError:
    # OpenAI's words (``got``: "empty base64-encoded bytes", ...).
    return bad_request(
        f"Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type "
        f"(e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got {got}.",
        param,
        "invalid_value",
    )


def image_download_failed(param: str, url: str, why: str) -> OpenAIError:
    """``url``: as an error may show it (``mcp/egress.shown``: no user, password or query)."""
    return bad_request(f"Error while downloading {url}: {why}.", param, "invalid_image_url")


def image_urls_off(param: str) -> OpenAIError:
    return bad_request(
        f"Invalid '{param}': this service does not download images (image_urls is off). Send the image in a data URL "
        "(data:image/png;base64,...).",
        param,
        "invalid_image_url",
    )
