"""The service's pages (http/pages.py) in real Chromium: the API docs at /docs and the
playground at /playground, driven by tests/node/browser.mjs (playwright-core, Debian's
chromium). No page may load anything from another host."""

from __future__ import annotations

import json
import os
import subprocess
import time
import wave
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from tests.conftest import MODEL
from tests.support.audio import word_error_rate
from tests.support.clients import keyed_server, sdk
from tests.support.server import LiveServer

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def browse(
    live: LiveServer, scenario: str, model: str = "", key: str = "", screenshot: str = "", refused: int | tuple = 0,
    env: dict | None = None,
) -> dict:
    """What ``scenario`` saw; the page's console has no errors but Chromium's own line for
    a ``refused`` status (or statuses) the test provokes."""
    assert Path(CHROMIUM).is_file(), "Chromium is required: `make system-deps` (apt-get install chromium)"
    assert (NODE_DIR / "node_modules" / "playwright-core").is_dir(), "run `make test` (it installs tests/node)"
    result = subprocess.run(
        ["node", "browser.mjs", live.base_url, scenario, model, key, screenshot],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    hosts = {urlsplit(url).netloc for url in seen["requests"] if not url.startswith(("data:", "blob:"))}
    assert hosts == {urlsplit(live.base_url).netloc}, f"requests to other hosts: {seen['requests']}"
    expected = tuple(f"Failed to load resource: the server responded with a status of {status} "
                     for status in (refused if isinstance(refused, tuple) else (refused,)))
    assert [error for error in seen["consoleErrors"] if not error.startswith(expected)] == []
    return seen


def spoken(live: LiveServer, text: str, capture: Path, lead: int, tail: int) -> Path:
    """``text`` spoken by the service as a WAV for Chromium's fake microphone, with ``lead``
    and ``tail`` samples of silence (24 kHz) around it."""
    wav = sdk(live).audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav").content
    # Chromium's WAV reader wants the sizes in the header: this rewrites the streamed one.
    with wave.open(str(capture), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        pcm = np.frombuffer(wav[wav.index(b"data") + 8 :], dtype="<i2")
        out.writeframes(np.concatenate([np.zeros(lead, dtype="<i2"), pcm, np.zeros(tail, dtype="<i2")]).tobytes())
    return capture


def test_the_root_redirects_to_the_playground(server):
    response = httpx.get(server.base_url + "/", timeout=30)
    assert response.status_code == 307 and response.headers["location"] == "/playground"


def test_the_docs_show_the_served_operations(server):
    document = httpx.get(server.base_url + "/docs/openai.json", timeout=30).json()
    served = {op["operationId"] for item in document["paths"].values() for op in item.values() if isinstance(op, dict) and "operationId" in op}
    assert {"createChatCompletion", "createEmbedding", "listModels"} <= served
    assert "createImage" not in served and "createImage" not in json.dumps(document["paths"])
    assert document["servers"] == [{"url": "/v1"}]


def test_the_docs_render_in_chromium_from_local_assets(server):
    seen = browse(server, "docs")
    assert "/chat/completions" in seen["paths"] and "/embeddings" in seen["paths"]
    assert "operations of the OpenAI API that this service serves itself" in seen["description"]
    assert seen["renderMs"] < 15000


def test_the_playground_streams_an_answer_and_shows_its_usage(server):
    seen = browse(server, "chat", MODEL)
    assert seen["url"].endswith("/playground")
    assert seen["answer"].strip()
    grown = [text for text in seen["answerTexts"] if text != seen["answer"]]
    assert grown, "the answer appeared all at once, not streamed"
    assert all(seen["answer"].startswith(text) for text in grown)
    prompt, completion, total = (int(word) for word in seen["usage"].split() if word.isdigit())
    assert prompt > 0 and 0 < completion <= 24 and total == prompt + completion
    assert float(seen["speed"].split()[0]) > 0
    assert not seen["errorShown"]


def test_the_playground_streams_a_response_through_the_responses_api(server):
    seen = browse(server, "responses", MODEL)
    assert seen["answer"].strip() and seen["usage"] and seen["error"] is None
    prompt, completion, total = (int(word) for word in seen["usage"].split() if word.isdigit())
    assert prompt > 0 and completion > 0 and total == prompt + completion


PAGE_ADMIN, PAGE_ALICE = "sk-pages-admin", "sk-pages-alice"


@pytest.fixture(scope="module")
def governed(tmp_path_factory):
    """A server with an admin key, the local model priced, usage written every 0.3 s: the
    admin page's, and the keyed server the playground's bad key is refused by (a server of
    its own for that cost another start, ~2.5 CPU-s)."""
    config = f"prices:\n  - {{model: {MODEL}, input: 1000, output: 2000}}\nusage_flush_seconds: 0.3\n"
    with keyed_server(tmp_path_factory.mktemp("governed"), [f"alice={PAGE_ALICE}"], [f"ops={PAGE_ADMIN}"], config=config) as live:
        yield live


def test_the_playground_chooses_a_chat_model_and_a_first_message_is_answered(server):
    seen = browse(server, "firstVisit")
    assert seen["models"] == sorted(seen["models"]) and seen["models"][0] != MODEL  # the embedding model sorts first
    assert seen["model"] == MODEL
    assert seen["error"] is None and seen["answered"]


def test_the_playground_asks_for_a_key_then_shows_the_api_error_for_a_bad_one(governed):
    expected = httpx.get(governed.api + "/models", headers={"Authorization": "Bearer sk-pages-bad"}, timeout=30)
    assert expected.status_code == 401
    seen = browse(governed, "badKey", key="sk-pages-bad", refused=401)
    assert seen["errorWithoutKey"] == "This server needs an API key: type yours in the API key field above."
    assert seen["error"] == expected.json()["error"]["message"]
    assert seen["storedKey"] == "sk-pages-bad"


def test_the_playground_microphone_records_a_question_and_the_answer_is_spoken(server, tmp_path):
    """Chromium's fake capture device plays a WAV of the question once, then silence, as the
    microphone: it opens when the record button asks for it (getUserMedia), so the recording
    hears the question from its start. Played in a loop (a 3 s loop, 3.5 s recorded) the
    recording caught the repeat's first words ("... France? What is the") in CI."""
    question = "What is the capital of France?"
    capture = spoken(server, question, tmp_path / "question.wav", lead=6000, tail=24000)
    seen = browse(server, "voice", MODEL, env={"FAKE_AUDIO_CAPTURE": str(capture), "FAKE_AUDIO_ONCE": "1", "RECORD_MS": "3500"})
    assert seen["transcriptionStatus"] == 200 and seen["speechStatus"] == 200
    assert word_error_rate(question, seen["question"]) <= 0.34  # Whisper base on a synthetic voice
    assert seen["answer"].strip() and seen["speechType"] == "audio/mpeg"
    assert seen["spokenSeconds"] > 0.3 and not seen["errorShown"]


def test_the_playground_talk_mode_holds_a_voice_conversation(server, tmp_path):
    """Talk mode over /v1/realtime in Chromium, its fake capture device playing a spoken
    question once, then silence (the VAD ends the turn), as the microphone. Played in a loop,
    the question came again 2 s after the turn ended, and the user speaking over the answer
    cancelled it: the test passed only where a turn is answered within 2 s (issue #41: it
    failed on a busy 2-core machine). Now it waits for the answer, however long it takes; what
    the microphone hears before the socket is open is sent once it is (talk.js), so a question
    played once is heard whole however slow the handshake."""
    question = "What is the capital of France?"
    capture = spoken(server, question, tmp_path / "question.wav", lead=12000, tail=48000)
    seen = browse(server, "talk", MODEL, env={"FAKE_AUDIO_CAPTURE": str(capture), "FAKE_AUDIO_ONCE": "1"})
    assert word_error_rate(question, seen["question"]) <= 0.34  # Whisper base on a synthetic voice
    assert seen["answer"].strip() and seen["audioDeltas"] > 0 and not seen["errorShown"]
    assert any("/v1/realtime/client_secrets" in url for url in seen["requests"])


# --- the admin page (docs/ADMIN.md) -----------------------------------------------------------


def test_the_admin_page_shows_projects_spend_and_the_audit_log_and_makes_a_project_and_a_key(governed):
    org = sdk(governed, PAGE_ADMIN, admin_api_key=PAGE_ADMIN).admin.organization
    project = org.projects.create(name="charted")
    bot = org.projects.service_accounts.create(project.id, name="bot")
    org.projects.spend_alerts.create(
        project.id, threshold_amount=500, currency="USD", interval="month",
        notification_channel={"type": "email", "recipients": ["finance@example.com"]},
    )
    answer = sdk(governed, bot.api_key.value).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=2
    )
    cost = (answer.usage.prompt_tokens * 1000 + answer.usage.completion_tokens * 2000) / 1e6
    today = int(time.time()) // 86400 * 86400
    for _ in range(100):  # usage is written every 0.3 s here
        if any(r.project_id == project.id for b in org.usage.costs(start_time=today, group_by=["project_id"]).data for r in b.results):
            break
        time.sleep(0.1)

    # Refusals the page provokes: the API key's 403; 404 for a project with no spend limit.
    seen = browse(governed, "admin", project.id, PAGE_ADMIN, refused=(403, 404), env={"API_KEY": PAGE_ALICE})
    assert "insufficient permissions" in seen["errorWithApiKey"] and not seen["errorShown"]
    [bar] = [bar for bar in seen["bars"] if bar["project"] == project.id]
    assert abs(bar["amount"] - cost) < 0.005  # the chart's bar is the project's spend today
    assert "project.created" in seen["auditTypes"] and "finance@example.com" in seen["alerts"]
    made = org.projects.retrieve(seen["createdProject"])
    assert made.name == "made-in-the-page"
    [key] = org.projects.api_keys.list(made.id).data
    assert sdk(governed, seen["newKey"]).models.list().data  # the key shown once works
    assert seen["keysShown"] == [key.redacted_value] and seen["newKey"] not in seen["keysShown"]
    assert {"project.created", "service_account.created"} <= set(seen["auditAfter"])
    assert seen["storedKey"] == PAGE_ADMIN
