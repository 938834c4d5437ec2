// The openai Node SDK's Realtime WebSocket client (openai/realtime/ws) in a voice turn:
// the pcm16 24 kHz file given is spoken, the server's VAD ends the turn, the answer comes
// as audio with its transcript. Prints what it saw as one JSON line.
import { readFileSync } from "node:fs";
import net from "node:net";
import OpenAI from "openai";
import { OpenAIRealtimeWS } from "openai/realtime/ws";

const [base, model, pcmPath] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "anything" });
// The SDK always dials wss://; the local server speaks plain ws:// on loopback, so the one
// transport option ws has for it (createConnection) opens a plain TCP socket instead of TLS.
const realtime = new OpenAIRealtimeWS({ model, options: { createConnection: (options) => net.connect(options) } }, client);
const seen = { types: [], transcript: "", audioBytes: 0, heard: "" };
const timer = setTimeout(() => { console.error("timed out", JSON.stringify(seen.types)); process.exit(1); }, 120000);

realtime.on("event", (event) => seen.types.push(event.type));
realtime.on("error", (error) => { console.error(error); process.exit(1); });
realtime.on("conversation.item.input_audio_transcription.completed", (event) => { seen.heard = event.transcript; });
realtime.on("response.output_audio_transcript.delta", (event) => { seen.transcript += event.delta; });
realtime.on("response.output_audio.delta", (event) => { seen.audioBytes += Buffer.from(event.delta, "base64").length; });
realtime.on("response.done", (event) => {
  seen.status = event.response.status;
  clearTimeout(timer);
  realtime.close();
  console.log(JSON.stringify(seen));
});
realtime.socket.on("open", () => {
  // English asked for: the answer is sampled, and SmolLM2 once answered in Chinese, which the
  // one English voice spoke as 0.35 s of audio (the test wants a spoken sentence).
  realtime.send({ type: "session.update", session: { type: "realtime", instructions: "Answer in English, in one sentence.", max_output_tokens: 24, audio: { input: { transcription: { model: "whisper-1" } } } } });
  const pcm = readFileSync(pcmPath);
  for (let start = 0; start < pcm.length; start += 4800) {
    realtime.send({ type: "input_audio_buffer.append", audio: pcm.subarray(start, start + 4800).toString("base64") });
  }
});
