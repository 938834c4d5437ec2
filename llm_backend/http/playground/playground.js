// The playground: one page, no dependencies. It calls the OpenAI API of this server as any
// client would (GET /v1/models, POST /v1/chat/completions or /v1/responses, streamed), with
// the key typed in (kept in this browser's localStorage only). With the local audio models
// listed, a microphone button records a question (MediaRecorder), has it transcribed
// (POST /v1/audio/transcriptions) and sends it; a speak button reads the last answer aloud
// (POST /v1/audio/speech); talk mode (talk.js) holds a voice conversation over /v1/realtime.
// headers(), showError() and apiError() are the pages' shared script (page_common/common.js).
"use strict";

const STORED_KEY = "llm-backend.key";
const STORED_MODEL = "llm-backend.model";
// The audio models' usual ids (configurable aliases of the local ones: docs/AUDIO.md).
const TRANSCRIBERS = ["whisper-1", "whisper-base", "gpt-4o-transcribe"];
const SPEAKERS = ["tts-1", "hibari", "gpt-4o-mini-tts"];
// Ids of models that do not chat (embeddings, moderation, audio, images): never the default,
// which a first message is sent to (the list is sorted: the embedding model often comes first).
const NOT_CHAT = /embed|minilm|moderation|guard|whisper|transcribe|tts|speech|dall-e|image|hibari/i;
let history = [];
let running = null;
let recorder = null;
let audioModels = { transcriber: null, speaker: null };

async function loadModels() {
  clearError();
  let response;
  try {
    response = await fetch("/v1/models", { headers: headers() });
  } catch (error) {
    showError("The server cannot be reached: " + error.message);
    return;
  }
  if (!response.ok) {
    const error = await apiError(response);
    if (response.status === 401 && !$("key").value.trim()) {
      // No key typed yet: ask for one rather than show the refusal's text.
      showError("This server needs an API key: type yours in the API key field above.");
      $("key").focus();
      return;
    }
    showError(error.message);
    return;
  }
  const models = (await response.json()).data.map((model) => model.id).sort();
  audioModels = {
    transcriber: TRANSCRIBERS.find((id) => models.includes(id)) || null,
    speaker: SPEAKERS.find((id) => models.includes(id)) || null,
  };
  $("record").hidden = !audioModels.transcriber || !navigator.mediaDevices;
  $("speak").hidden = !audioModels.speaker;
  $("talk").hidden = !audioModels.transcriber || !audioModels.speaker || !navigator.mediaDevices;
  const select = $("model");
  const wanted = select.value || localStorage.getItem(STORED_MODEL);
  select.replaceChildren(...models.map((id) => new Option(id, id)));
  if (models.includes(wanted)) select.value = wanted;
  else select.value = models.find((id) => !NOT_CHAT.test(id) && !TRANSCRIBERS.includes(id) && !SPEAKERS.includes(id)) || models[0] || "";
}

function bubble(role, text) {
  const element = document.createElement("div");
  element.className = "message " + role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  element.append(who, body);
  $("messages").append(element);
  $("messages").scrollTop = $("messages").scrollHeight;
  return body;
}

// Server-sent events of a fetch response: {event, data} for each one.
async function* serverSentEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

function requestFor(api) {
  const system = $("system").value.trim();
  const temperature = parseFloat($("temperature").value);
  const maxTokens = parseInt($("max-tokens").value, 10);
  const model = $("model").value;
  if (api === "responses") {
    const body = { model, input: history.map(({ role, content }) => ({ role, content })), stream: true };
    if (system) body.instructions = system;
    if (!Number.isNaN(temperature)) body.temperature = temperature;
    if (!Number.isNaN(maxTokens)) body.max_output_tokens = maxTokens;
    return ["/v1/responses", body];
  }
  const messages = system ? [{ role: "system", content: system }, ...history] : [...history];
  const body = { model, messages, stream: true, stream_options: { include_usage: true } };
  if (!Number.isNaN(temperature)) body.temperature = temperature;
  if (!Number.isNaN(maxTokens)) body.max_tokens = maxTokens;
  return ["/v1/chat/completions", body];
}

// What one streamed event adds: text, usage, or an error (chat chunks or Responses events).
function readEvent(api, data) {
  const event = JSON.parse(data);
  if (event.error) return { error: event.error.message || String(event.error) };
  if (api === "responses") {
    if (event.type === "response.output_text.delta") return { text: event.delta };
    if ((event.type === "response.completed" || event.type === "response.incomplete") && event.response) return { usage: event.response.usage };
    if (event.type === "response.failed") return { error: (event.response.error || {}).message || "The response failed." };
    if (event.type === "error") return { error: event.message };
    return {};
  }
  const choice = (event.choices || [])[0];
  return { text: choice && choice.delta ? choice.delta.content : null, usage: event.usage };
}

function showStats(usage, started, firstAt, ended) {
  const parts = [];
  if (usage) {
    const prompt = usage.prompt_tokens ?? usage.input_tokens;
    const completion = usage.completion_tokens ?? usage.output_tokens;
    const total = usage.total_tokens ?? prompt + completion;
    parts.push(`<span id="usage">prompt ${prompt} · completion ${completion} · total ${total} tokens</span>`);
    const seconds = (ended - (completion > 1 && firstAt ? firstAt : started)) / 1000;
    if (completion && seconds > 0) parts.push(`<span id="speed">${(completion / seconds).toFixed(1)} tokens/s</span>`);
  }
  if (firstAt) parts.push(`first token after ${((firstAt - started) / 1000).toFixed(2)} s`);
  $("stats").innerHTML = parts.join(" · ");
}

function setRunning(controller) {
  running = controller;
  $("send").disabled = Boolean(controller);
  $("stop").disabled = !controller;
}

function authorization() {
  const { authorization } = headers();
  return authorization ? { authorization } : {};
}

async function record() {
  if (recorder) {
    recorder.stop(); // its "stop" handler transcribes and sends
    return;
  }
  clearError();
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    showError("No microphone: " + error.message);
    return;
  }
  const chunks = [];
  recorder = new MediaRecorder(stream);
  recorder.addEventListener("dataavailable", (event) => chunks.push(event.data));
  recorder.addEventListener("stop", async () => {
    stream.getTracks().forEach((track) => track.stop());
    recorder = null;
    $("record").textContent = "Record";
    const form = new FormData();
    form.append("file", new Blob(chunks, { type: chunks[0]?.type || "audio/webm" }), "question.webm");
    form.append("model", audioModels.transcriber);
    $("stats").textContent = "Transcribing...";
    const response = await fetch("/v1/audio/transcriptions", { method: "POST", headers: authorization(), body: form });
    $("stats").textContent = "";
    if (!response.ok) {
      showError((await apiError(response)).message);
      return;
    }
    $("prompt").value = (await response.json()).text;
    send();
  });
  recorder.start();
  $("record").textContent = "Stop recording";
}

async function speak() {
  const last = [...history].reverse().find((message) => message.role === "assistant");
  if (!last || !audioModels.speaker) return;
  clearError();
  $("speak").disabled = true;
  try {
    const body = { model: audioModels.speaker, voice: "alloy", input: last.content, response_format: "mp3" };
    const response = await fetch("/v1/audio/speech", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) throw new Error((await apiError(response)).message);
    const player = $("player");
    player.src = URL.createObjectURL(await response.blob());
    await player.play().catch(() => {}); // a page without a user gesture may not play: the audio is loaded all the same
  } catch (error) {
    showError(error.message);
  } finally {
    $("speak").disabled = false;
  }
}

async function send() {
  const text = $("prompt").value.trim();
  if (!text || running || !$("model").value) return;
  clearError();
  $("stats").textContent = "";
  const api = document.querySelector("input[name=api]:checked").value;
  $("prompt").value = "";
  bubble("user", text);
  history.push({ role: "user", content: text });
  const [url, body] = requestFor(api);
  const controller = new AbortController();
  setRunning(controller);
  const started = performance.now();
  let firstAt = null;
  let answer = "";
  let usage = null;
  let target = null;
  try {
    const response = await fetch(url, { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      const error = await apiError(response);
      // Responses is served once that operation lands here (or an upstream serves it).
      if (api === "responses" && error.code === "unknown_url") {
        $("api-hint").textContent = "This server does not serve Responses (yet): use Chat Completions.";
      }
      throw new Error(error.message);
    }
    target = bubble("assistant", "");
    for await (const { data } of serverSentEvents(response)) {
      if (data === "[DONE]") break;
      const piece = readEvent(api, data);
      if (piece.error) throw new Error(piece.error);
      if (piece.usage) usage = piece.usage;
      if (piece.text) {
        firstAt = firstAt ?? performance.now();
        answer += piece.text;
        target.textContent = answer;
        $("messages").scrollTop = $("messages").scrollHeight;
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") showError(error.message);
  } finally {
    setRunning(null);
  }
  if (answer) {
    history.push({ role: "assistant", content: answer });
    $("speak").disabled = false;
  }
  else {
    history.pop();
    if (target) target.parentElement.remove();
  }
  showStats(usage, started, firstAt, performance.now());
}

function start() {
  $("key").value = localStorage.getItem(STORED_KEY) || "";
  $("key").addEventListener("change", () => {
    localStorage.setItem(STORED_KEY, $("key").value.trim());
    loadModels();
  });
  $("model").addEventListener("change", () => localStorage.setItem(STORED_MODEL, $("model").value));
  $("chat").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      send();
    }
  });
  $("stop").addEventListener("click", () => running && running.abort());
  $("record").addEventListener("click", record);
  $("speak").addEventListener("click", speak);
  $("clear").addEventListener("click", () => {
    history = [];
    $("messages").replaceChildren();
    $("stats").textContent = "";
    clearError();
  });
  loadModels();
}

start();
