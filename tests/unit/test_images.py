"""Images of a chat request to a local vision model (llm_backend/backends/llama/images.py,
image_downloads.py): each refusal, named by the image's part, before anything decodes the
image; the worker's form of an accepted one; a text-only model's answer as before
(params.py); images named by URL downloaded under the MCP client's address rules, from a real
server on loopback."""

from __future__ import annotations

import base64
import hashlib
import io
import resource
import time
import zlib
from dataclasses import replace

import pytest
from PIL import Image

from llm_backend.backends.llama.image_downloads import ImageDownloads
from llm_backend.backends.llama.images import ImageLimits, with_images, without_data
from llm_backend.backends.llama.params import chat_params
from llm_backend.errors import OpenAIError
from llm_backend.settings import Settings
from tests.support.images import bomb_png, png, webp_claiming
from tests.support.loopback import LoopbackApp

# Pillow's own warning past 89 MP, which the service silences once (images._pillow) and pytest
# restores for every test: the refusals here are the point.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
SETTINGS = Settings()
LIMITS = ImageLimits.of(SETTINGS)
PART = "messages[0].content[1].image_url"


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def chat(*urls: str, detail: str | None = None) -> list[dict]:
    parts: list[dict] = [{"type": "text", "text": "what is it?"}]
    for url in urls:
        parts.append({"type": "image_url", "image_url": {"url": url, **({"detail": detail} if detail else {})}})
    return [{"role": "user", "content": parts}]


class NoDownloads:
    def __call__(self):
        raise AssertionError("nothing was to be downloaded")


async def refused(messages: list[dict], limits: ImageLimits = LIMITS, downloads=NoDownloads()) -> OpenAIError:
    with pytest.raises(OpenAIError) as caught:
        await with_images(messages, limits, downloads)
    assert caught.value.status == 400
    return caught.value


async def test_a_1x1_png_data_url_becomes_the_workers_image_part():
    image = png()
    messages = await with_images(chat(data_url(image), detail="low"), LIMITS, NoDownloads())
    text, part = messages[0]["content"]
    assert text == {"type": "text", "text": "what is it?"}
    assert part == {
        "type": "image", "data": base64.b64encode(image).decode(), "sha256": hashlib.sha256(image).hexdigest(),
        "width": 1, "height": 1, "format": "png", "detail": "low",
    }


async def test_jpeg_webp_and_gif_are_read_by_their_headers():
    for kind, fmt in (("jpeg", "JPEG"), ("webp", "WEBP"), ("gif", "GIF")):
        out = io.BytesIO()
        Image.new("RGB", (3, 2)).save(out, fmt)
        part = (await with_images(chat(data_url(out.getvalue(), f"image/{kind}")), LIMITS, NoDownloads()))[0]["content"][1]
        assert (part["format"], part["width"], part["height"]) == (kind, 3, 2)


async def test_a_request_without_images_is_left_as_it_is():
    messages = [{"role": "user", "content": "hello"}]
    assert await with_images(messages, LIMITS, NoDownloads()) is messages


async def test_a_decompression_bomb_is_refused_by_its_header_without_being_decoded():
    bomb = bomb_png(20_000)
    assert len(bomb) < 100_000  # 20,000 x 20,000 1-bit pixels: 50 MB decoded, 400 MB as Pillow's "1" mode
    messages = chat(data_url(bomb))
    peak, started = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    error = await refused(messages)
    assert (error.code, error.param) == ("image_too_large", PART)
    assert time.perf_counter() - started < 1  # inflating its IDAT alone takes longer
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 64 * 1024  # KiB: nothing decoded


async def test_an_image_past_the_pixel_bound_below_pillows_own_is_refused_naming_its_size():
    # 10,000 x 10,000: under Pillow's own refusal (179 M pixels), over the service's 33.5 M.
    error = await refused(chat(data_url(bomb_png(10_000))))
    assert (error.code, error.param) == ("image_too_large", PART)
    assert "10000x10000 pixels" in error.message


async def test_a_webp_past_the_pixel_bound_is_refused_its_decoder_s_canvas_never_touched():
    # 12,000 x 12,000: libwebp callocs two 576 MB canvases at open, pages never written.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    error = await refused(chat(data_url(webp_claiming(12_000), "image/webp")))
    assert (error.code, error.param) == ("image_too_large", PART)
    assert "12000x12000 pixels" in error.message
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 64 * 1024  # KiB


async def test_a_side_past_its_bound_is_refused_though_its_pixels_are_few():
    error = await refused(chat(data_url(png(600, 1))), replace(LIMITS, max_side=512))
    assert (error.code, error.param) == ("image_too_large", PART)


async def test_bytes_past_the_bound_are_refused_by_the_base64_length_before_decoding():
    # Not base64 at all: refused as too large, so its base64 was never decoded.
    url = "data:image/png;base64," + "!" * 4000
    error = await refused(chat(url), replace(LIMITS, max_bytes=2048))
    assert (error.code, error.param) == ("invalid_image_format", PART)
    assert "below 0.002048 MB" in error.message


async def test_a_request_s_images_together_are_bounded():
    image = data_url(png(64, 64))
    one = len(base64.b64decode(image.split(",")[1]))
    error = await refused(chat(image, image, image), replace(LIMITS, max_request_bytes=2 * one + 1))
    assert (error.code, error.param) == ("image_too_large", "messages[0].content[3].image_url")


async def test_images_are_counted_before_any_is_read():
    tiny = data_url(png())
    broken = "data:image/png;base64,!!!!"  # would be refused as base64 if it were read
    error = await refused(chat(*[tiny] * 3, broken), replace(LIMITS, max_count=3))
    assert (error.code, error.param) == ("too_many_images", "messages[0].content[4].image_url")


@pytest.mark.parametrize(
    "url, why",
    [
        ("data:image/png;base64,", "empty base64-encoded bytes"),
        ("data:image/png;base64,aGVsbG8*", "not standard base64"),
        ("data:text/plain;base64,aGVsbG8=", "without an image MIME type"),
        ("data:image/png,rawbytes", "without an image MIME type and ';base64'"),
        ("ftp://example.com/a.png", "neither a data URL nor an http(s) URL"),
    ],
)
async def test_what_is_not_a_base64_image_data_url_is_refused_in_openais_words(url, why):
    error = await refused(chat(url))
    assert (error.code, error.param) == ("invalid_value", PART)
    assert error.message.startswith(f"Invalid '{PART}'. Expected a base64-encoded data URL with an image MIME type")
    assert why in error.message


async def test_another_format_is_refused_as_unsupported():
    out = io.BytesIO()
    Image.new("RGB", (1, 1)).save(out, "BMP")
    error = await refused(chat(data_url(out.getvalue(), "image/bmp")))
    assert (error.code, error.param) == ("invalid_image_format", PART)
    assert "['png', 'jpeg', 'gif', 'webp']" in error.message


async def test_a_png_whose_header_is_broken_is_an_image_parse_error():
    error = await refused(chat(data_url(png()[:8] + b"\x00" * 20)))
    assert (error.code, error.param) == ("image_parse_error", PART)


async def test_with_image_urls_off_a_url_is_refused_before_any_download():
    error = await refused(chat("https://example.com/cat.png"), replace(LIMITS, urls=False))
    assert (error.code, error.param) == ("invalid_image_url", PART)


def test_a_route_key_sees_an_image_s_digest_not_its_bytes():
    part = {"type": "image", "data": "AAAA", "sha256": "ab", "width": 1, "height": 1, "format": "png", "detail": "auto"}
    messages = [{"role": "user", "content": [{"type": "text", "text": "x"}, part]}, {"role": "assistant", "content": "y"}]
    kept = {key: value for key, value in part.items() if key != "data"}
    assert without_data(messages) == [{"role": "user", "content": [{"type": "text", "text": "x"}, kept]}, messages[1]]


# --- params.py: what the engine gets, and a text-only model's answer --------------------------


async def test_chat_params_keep_a_vision_model_s_image_parts_in_order():
    messages = await with_images(chat(data_url(png())), LIMITS, NoDownloads())
    content = chat_params({"messages": messages}, n_ctx=512)["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image"]


async def test_an_image_counts_by_its_bounds_not_its_base64_against_the_context():
    # 300 KB of PNG is 400,000 base64 characters: past a 512-token context's 32,768.
    noise = Image.frombytes("L", (600, 500), bytes(range(256)) * 1172)
    out = io.BytesIO()
    noise.save(out, "PNG", compress_level=0)
    messages = await with_images(chat(data_url(out.getvalue())), LIMITS, NoDownloads())
    assert len(messages[0]["content"][1]["data"]) > 512 * 64
    chat_params({"messages": messages}, n_ctx=512)  # not context_length_exceeded


def test_a_text_only_model_still_refuses_an_image_naming_its_part_whatever_its_size():
    # A megabyte of data URL once answered as too long for the context.
    messages = chat("data:image/png;base64," + "A" * 1_000_000)
    with pytest.raises(OpenAIError) as caught:
        chat_params({"messages": messages}, n_ctx=512)
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "messages[0].content[1].type")


# --- downloads -----------------------------------------------------------------------------


class ImageServer(LoopbackApp):
    image = png(2, 3)

    def routes(self, app) -> None:
        from aiohttp import web

        async def pixel(request):
            return web.Response(body=self.image, content_type="image/png")

        async def endless(request):
            response = web.StreamResponse()
            await response.prepare(request)
            for _ in range(1000):
                await response.write(b"\x00" * 65536)
            return response

        async def moved(request):
            raise web.HTTPFound("/pixel.png")

        async def zipped(request):
            return web.Response(body=zlib.compress(self.image), headers={"Content-Encoding": "deflate"})

        app.router.add_get("/pixel.png", pixel)
        app.router.add_get("/endless", endless)
        app.router.add_get("/moved", moved)
        app.router.add_get("/zipped", zipped)


@pytest.fixture(scope="module")
def server():
    with ImageServer() as running:
        yield running


def downloads(**settings) -> ImageDownloads:
    return ImageDownloads(Settings(**settings))


async def test_a_listed_url_is_downloaded_at_a_loopback_address(server):
    listed = downloads(image_allowed_urls=[server.url])
    part = (await with_images(chat(server.url + "/pixel.png"), LIMITS, lambda: listed))[0]["content"][1]
    assert (part["width"], part["height"], part["sha256"]) == (2, 3, hashlib.sha256(ImageServer.image).hexdigest())


async def test_an_unlisted_loopback_url_is_refused_as_mcp_servers_are(server):
    error = await refused(chat(server.url + "/pixel.png"), downloads=lambda: downloads())
    assert (error.code, error.param) == ("invalid_image_url", PART)
    assert "public addresses only" in error.message


async def test_a_redirect_is_followed_and_checked(server):
    listed = downloads(image_allowed_urls=[server.url])
    part = (await with_images(chat(server.url + "/moved"), LIMITS, lambda: listed))[0]["content"][1]
    assert part["sha256"] == hashlib.sha256(ImageServer.image).hexdigest()
    only_moved = downloads(image_allowed_urls=[server.url + "/moved"])
    error = await refused(chat(server.url + "/moved"), downloads=lambda: only_moved)
    assert error.code == "invalid_image_url"


async def test_a_download_is_cut_off_at_the_byte_bound(server):
    listed = downloads(image_allowed_urls=[server.url])
    started = time.perf_counter()
    error = await refused(chat(server.url + "/endless"), replace(LIMITS, max_bytes=100_000), lambda: listed)
    assert (error.code, error.param) == ("invalid_image_format", PART)
    assert time.perf_counter() - started < 5  # not the 65 MB it would send


async def test_a_compressed_answer_and_a_missing_image_are_download_errors(server):
    listed = downloads(image_allowed_urls=[server.url])
    for path, why in (("/zipped", "compressed"), ("/nothing", "HTTP 404")):
        error = await refused(chat(server.url + path), downloads=lambda: listed)
        assert (error.code, error.param) == ("invalid_image_url", PART)
        assert why in error.message


def test_the_image_settings_read_the_environment_and_refuse_a_prefix_without_a_host(monkeypatch):
    monkeypatch.setenv("LLM_BACKEND_IMAGE_ALLOWED_URLS", "http://10.0.0.5/images, https://cdn.example")
    monkeypatch.setenv("LLM_BACKEND_IMAGE_MAX_COUNT", "4")
    settings = Settings()
    assert settings.image_allowed_urls == ["http://10.0.0.5/images", "https://cdn.example"]
    assert ImageLimits.of(settings).max_count == 4
    with pytest.raises(ValueError, match="image_allowed_urls: 'file:///etc' is not an http"):
        Settings(image_allowed_urls=["file:///etc"])
