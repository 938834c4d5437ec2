// Talk mode: a voice conversation with the selected model over OpenAI's Realtime API, as a
// browser client of it does. The page asks for an ephemeral client secret with the key
// (POST /v1/realtime/client_secrets), so the key itself never rides the WebSocket; opens
// /v1/realtime with the secret as a subprotocol (a browser cannot set headers); sends the
// microphone as pcm16 at 24 kHz (input_audio_buffer.append, the server's VAD cuts the
// turns); plays the answer's audio as it comes, and stops it when the user speaks over it.
"use strict";

let talk = null;
const EARLY_CHUNKS = 60; // of 4096 samples at 24 kHz: 10 s

function pcm16Base64(samples) {
  const bytes = new Uint8Array(samples.length * 2);
  const view = new DataView(bytes.buffer);
  samples.forEach((sample, index) => view.setInt16(index * 2, Math.max(-1, Math.min(1, sample)) * 0x7fff, true));
  let text = "";
  for (let start = 0; start < bytes.length; start += 0x8000) text += String.fromCharCode(...bytes.subarray(start, start + 0x8000));
  return btoa(text);
}

function base64Samples(data) {
  const bytes = Uint8Array.from(atob(data), (char) => char.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  const samples = new Float32Array(bytes.length >> 1);
  for (let index = 0; index < samples.length; index++) samples[index] = view.getInt16(index * 2, true) / 0x8000;
  return samples;
}

async function startTalk() {
  clearError();
  const model = $("model").value;
  const session = { type: "realtime", model, audio: { input: { transcription: { model: audioModels.transcriber } } } };
  if ($("system").value.trim()) session.instructions = $("system").value.trim();
  const made = await fetch("/v1/realtime/client_secrets", { method: "POST", headers: headers(), body: JSON.stringify({ session }) });
  if (!made.ok) {
    showError((await apiError(made)).message);
    return;
  }
  const secret = (await made.json()).value;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
  } catch (error) {
    showError("No microphone: " + error.message);
    return;
  }
  const url = location.origin.replace(/^http/, "ws") + "/v1/realtime?model=" + encodeURIComponent(model);
  const socket = new WebSocket(url, ["realtime", "openai-insecure-api-key." + secret]);
  const context = new AudioContext({ sampleRate: 24000 });
  const source = context.createMediaStreamSource(stream);
  const processor = context.createScriptProcessor(4096, 1, 1);
  // What the user says while the socket opens is sent once it is open, not lost: a question
  // begun at once would reach the server without its first words (at most EARLY_CHUNKS kept).
  const early = [];
  processor.onaudioprocess = (event) => {
    const chunk = JSON.stringify({ type: "input_audio_buffer.append", audio: pcm16Base64(event.inputBuffer.getChannelData(0)) });
    if (socket.readyState === WebSocket.OPEN) socket.send(chunk);
    else if (socket.readyState === WebSocket.CONNECTING && early.push(chunk) > EARLY_CHUNKS) early.shift();
  };
  socket.onopen = () => early.splice(0).forEach((chunk) => socket.send(chunk));
  source.connect(processor);
  processor.connect(context.destination); // it writes nothing: kept running by the graph
  talk = { socket, context, stream, processor, playing: [], playAt: 0, answers: {}, stats: { audioDeltas: 0 } };
  window.talkStats = talk.stats;
  socket.onmessage = (message) => heard(JSON.parse(message.data));
  socket.onclose = () => stopTalk();
  $("talk").textContent = "Stop talking";
}

function heard(event) {
  switch (event.type) {
    case "conversation.item.input_audio_transcription.completed":
      bubble("user", event.transcript);
      break;
    case "response.output_audio_transcript.delta":
      talk.answers[event.item_id] = talk.answers[event.item_id] || bubble("assistant", "");
      talk.answers[event.item_id].textContent += event.delta;
      break;
    case "response.output_audio.delta": {
      const samples = base64Samples(event.delta);
      const buffer = talk.context.createBuffer(1, samples.length, 24000);
      buffer.copyToChannel(samples, 0);
      const node = talk.context.createBufferSource();
      node.buffer = buffer;
      node.connect(talk.context.destination);
      talk.playAt = Math.max(talk.playAt, talk.context.currentTime);
      node.start(talk.playAt);
      talk.playAt += buffer.duration;
      talk.playing.push(node);
      talk.stats.audioDeltas += 1;
      break;
    }
    case "input_audio_buffer.speech_started": // barge-in: the user speaks, the answer stops
      talk.playing.forEach((node) => node.stop());
      talk.playing = [];
      talk.playAt = 0;
      break;
    case "error":
      showError(event.error.message);
      break;
  }
}

function stopTalk() {
  if (!talk) return;
  const { socket, context, stream, processor } = talk;
  talk = null;
  processor.disconnect();
  stream.getTracks().forEach((track) => track.stop());
  if (socket.readyState <= WebSocket.OPEN) socket.close();
  context.close();
  $("talk").textContent = "Talk";
}

$("talk").addEventListener("click", () => (talk ? stopTalk() : startTalk()));
