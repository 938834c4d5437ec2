// The service's pages in real Chromium (Debian's /usr/bin/chromium, driven by playwright-core).
// Usage: node browser.mjs <base url> <scenario> [model] [key] [screenshot path]
// Prints one JSON line of what was seen; the pytest side (tests/e2e/test_pages.py) judges it.
import { chromium } from "playwright-core";

const [base, scenario, model, key, screenshot] = process.argv.slice(2);
const seen = { requests: [], consoleErrors: [] };
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"];
// A WAV file as the microphone (the voice scenarios): Chromium's fake capture device, which
// plays it in a loop, or once and then silence with FAKE_AUDIO_ONCE (%noloop).
if (process.env.FAKE_AUDIO_CAPTURE) {
  const capture = process.env.FAKE_AUDIO_CAPTURE + (process.env.FAKE_AUDIO_ONCE ? "%noloop" : "");
  ARGS.push("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", `--use-file-for-fake-audio-capture=${capture}`, "--autoplay-policy=no-user-gesture-required");
}

// A name that resolves to loopback in this browser: the end state of DNS rebinding.
if (process.env.HOST_RULES) ARGS.push(`--host-resolver-rules=${process.env.HOST_RULES}`);

async function openPlayground(page) {
  await page.goto(base + "/");
  seen.url = page.url();
}

const scenarios = {
  async docs(page) {
    const started = Date.now();
    await page.goto(base + "/docs");
    await page.locator(".opblock").first().waitFor();
    seen.renderMs = Date.now() - started;
    seen.title = await page.locator(".info .title").first().innerText();
    seen.paths = await page.locator(".opblock-summary-path").allInnerTexts();
    seen.description = await page.locator(".info .description").first().innerText();
  },

  async chat(page) {
    await openPlayground(page);
    await page.locator(`#model option[value="${model}"]`).waitFor({ state: "attached" });
    await page.selectOption("#model", model);
    await page.fill("#system", "Answer in one short sentence.");
    await page.fill("#max-tokens", "24");
    // Every text the answer shows while it streams: more than one means it grew piece by piece.
    await page.evaluate(() => {
      window.answerTexts = [];
      new MutationObserver(() => {
        const answer = document.querySelector(".message.assistant .text");
        if (answer && answer.textContent) window.answerTexts.push(answer.textContent);
      }).observe(document.getElementById("messages"), { subtree: true, childList: true, characterData: true });
    });
    await page.fill("#prompt", "What is the capital of France?");
    await page.click("#send");
    await page.locator("#usage").waitFor();
    seen.answerTexts = await page.evaluate(() => window.answerTexts);
    seen.answer = await page.locator(".message.assistant .text").last().innerText();
    seen.usage = await page.locator("#usage").innerText();
    seen.speed = await page.locator("#speed").innerText();
    seen.errorShown = await page.locator("#error").isVisible();
  },

  async responses(page) {
    await openPlayground(page);
    await page.locator(`#model option[value="${model}"]`).waitFor({ state: "attached" });
    await page.selectOption("#model", model);
    await page.check("#api-responses");
    await page.fill("#max-tokens", "16");
    await page.fill("#prompt", "Say hello.");
    await page.click("#send");
    await Promise.race([page.locator("#usage").waitFor(), page.locator("#error").waitFor()]);
    seen.usage = (await page.locator("#usage").count()) ? await page.locator("#usage").innerText() : null;
    seen.answer = (await page.locator(".message.assistant .text").count()) ? await page.locator(".message.assistant .text").last().innerText() : null;
    seen.error = (await page.locator("#error").isVisible()) ? await page.locator("#error").innerText() : null;
    seen.hint = await page.locator("#api-hint").innerText();
  },

  // Record a question from the fake microphone, have it transcribed and answered, then
  // have the answer read aloud.
  async voice(page) {
    await openPlayground(page);
    await page.locator("#record:not([hidden])").waitFor();
    await page.selectOption("#model", model);
    await page.fill("#max-tokens", "24");
    const transcribed = page.waitForResponse((response) => response.url().endsWith("/v1/audio/transcriptions"));
    await page.click("#record");
    await page.waitForTimeout(Number(process.env.RECORD_MS || 4000));
    await page.click("#record");
    seen.transcriptionStatus = (await transcribed).status();
    await page.locator("#usage").waitFor();
    seen.question = await page.locator(".message.user .text").first().innerText();
    seen.answer = await page.locator(".message.assistant .text").last().innerText();
    const spoken = page.waitForResponse((response) => response.url().endsWith("/v1/audio/speech"));
    await page.click("#speak");
    const speech = await spoken;
    seen.speechStatus = speech.status();
    seen.speechType = speech.headers()["content-type"];
    await page.waitForFunction(() => document.getElementById("player").duration > 0);
    seen.spokenSeconds = await page.evaluate(() => document.getElementById("player").duration);
    seen.errorShown = await page.locator("#error").isVisible();
  },

  // A page of another site (its URL in the model argument) attacks the service at base; the
  // page writes what it got in window.result.
  async talk(page) {
    await openPlayground(page);
    await page.locator("#talk:not([hidden])").waitFor();
    await page.selectOption("#model", model);
    await page.fill("#system", "Answer in one short sentence.");
    await page.click("#talk");
    await page.locator(".message.user .text").first().waitFor();
    await page.waitForFunction(() => window.talkStats && window.talkStats.audioDeltas > 0 && document.querySelector(".message.assistant .text")?.textContent);
    seen.question = await page.locator(".message.user .text").first().innerText();
    seen.answer = await page.locator(".message.assistant .text").first().innerText();
    seen.audioDeltas = await page.evaluate(() => window.talkStats.audioDeltas);
    seen.errorShown = await page.locator("#error").isVisible();
    await page.click("#talk"); // stop
  },

  async attack(page) {
    await page.goto(`${model}?target=${encodeURIComponent(base)}`);
    await page.waitForFunction(() => window.result !== undefined);
    seen.result = await page.evaluate(() => window.result);
  },

  // The service under another name (model argument: the URL to open) that resolves to it.
  async rebound(page) {
    const response = await page.goto(model);
    seen.status = response.status();
    seen.body = await response.text();
  },

  // The admin page (model argument: a project with costs; key: an admin key). An API key
  // first (the MODEL env: an API key that is not an admin's): its 403 is shown.
  async admin(page) {
    await page.goto(base + "/admin");
    await page.fill("#key", process.env.API_KEY);
    await page.locator("#key").dispatchEvent("change");
    await page.locator("#error:not([hidden])").waitFor();
    seen.errorWithApiKey = await page.locator("#error").innerText();
    await page.fill("#key", key);
    await page.locator("#key").dispatchEvent("change");
    // The whole refresh (the chart, the alerts and the audit log load side by side, any
    // may come last), not only the first of them: it marks the body when all are shown.
    await page.locator("body[data-loaded]").waitFor();
    await page.locator(`#projects tr[data-id="${model}"]`).waitFor();
    await page.locator("#chart rect.bar").first().waitFor();
    seen.errorShown = await page.locator("#error").isVisible();
    seen.bars = await page.locator("#chart rect.bar").evaluateAll((rects) => rects.map((r) => ({ project: r.dataset.project, amount: Number(r.dataset.amount) })));
    seen.auditTypes = await page.locator("#audit td:nth-child(2)").allInnerTexts();
    seen.alerts = await page.locator("#alerts td:nth-child(3)").allInnerTexts();
    await page.fill("#project-name", "made-in-the-page");
    await page.click("#create-project button");
    await page.locator("#projects tr.selected", { hasText: "made-in-the-page" }).waitFor();
    seen.createdProject = await page.locator("#projects tr.selected").getAttribute("data-id");
    await page.fill("#account-name", "page-bot");
    await page.click("#create-account button");
    await page.locator("#new-key:not([hidden])").waitFor();
    seen.newKey = await page.locator("#new-key").getAttribute("data-key");
    seen.keysShown = await page.locator("#keys td:first-child").allInnerTexts();
    seen.auditAfter = await page.locator("#audit td:nth-child(2)").allInnerTexts();
    seen.storedKey = await page.evaluate(() => localStorage.getItem("llm-backend.admin-key"));
  },

  // The model the page chooses by itself, and a first message sent to it.
  async firstVisit(page) {
    await openPlayground(page);
    await page.locator("#model option").first().waitFor({ state: "attached" });
    seen.models = await page.locator("#model option").allInnerTexts();
    seen.model = await page.locator("#model").inputValue();
    await page.fill("#max-tokens", "8");
    await page.fill("#prompt", "Say hello.");
    await page.click("#send");
    await Promise.race([page.locator("#usage").waitFor(), page.locator("#error:not([hidden])").waitFor()]);
    seen.error = (await page.locator("#error").isVisible()) ? await page.locator("#error").innerText() : null;
    seen.answered = (await page.locator("#usage").count()) > 0;
  },

  async badKey(page) {
    await openPlayground(page);
    await page.locator("#error").waitFor(); // no key yet: the first listing is refused
    seen.errorWithoutKey = await page.locator("#error").innerText();
    await page.fill("#key", key);
    const listed = page.waitForResponse((response) => response.url().endsWith("/v1/models"));
    await page.locator("#key").dispatchEvent("change");
    await listed;
    // The page clears the error while it asks again: wait for the new message, not the blank.
    await page.waitForFunction((before) => !["", before].includes(document.getElementById("error").textContent), seen.errorWithoutKey);
    seen.error = await page.locator("#error").innerText();
    seen.storedKey = await page.evaluate(() => localStorage.getItem("llm-backend.key"));
  },
};

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on("request", (request) => seen.requests.push(request.url()));
  page.on("console", (message) => message.type() === "error" && seen.consoleErrors.push(message.text()));
  page.setDefaultTimeout(120000);
  await scenarios[scenario](page);
  if (screenshot) await page.screenshot({ path: screenshot });
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
