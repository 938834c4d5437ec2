// The Node SDK's Responses WebSocket client (openai 7: ResponsesWS) against a live server: two
// turns on one connection, the second continuing the first by previous_response_id with only
// its new input. Usage: node responses_ws.mjs BASE_URL MODEL ; prints one JSON line.
import OpenAI from "openai";
import { ResponsesWS } from "openai/resources/responses/ws";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "anything", maxRetries: 0 });
const socket = new ResponsesWS(client);
const ENDS = ["response.completed", "response.incomplete", "response.failed", "error"];

const turns = [];
let current = null;
socket.on("event", (event) => {
  if (event.type === "response.created") current = { events: [], text: "" };
  if (current === null) current = { events: [], text: "" };
  current.events.push(event.type);
  if (event.type === "response.output_text.delta") current.text += event.delta;
  if (ENDS.includes(event.type)) {
    current.response = event.response ?? null;
    current.error = event.error ?? null;
    turns.push(current);
    current = null;
  }
});

async function ended(count) {
  const deadline = Date.now() + 90000;
  while (turns.length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  if (turns.length < count) throw new Error(`turn ${count} never ended`);
  return turns[count - 1];
}

socket.send({ type: "response.create", model, input: "My name is Ann.", max_output_tokens: 16, temperature: 0, store: false });
const first = await ended(1);
socket.send({
  type: "response.create", model, previous_response_id: first.response?.id, input: "What is my name?",
  max_output_tokens: 16, temperature: 0, store: false,
});
const second = await ended(2);
socket.close({ code: 1000, reason: "done" });
const shown = (turn) => ({ events: turn.events, text: turn.text, id: turn.response?.id ?? null,
  previous: turn.response?.previous_response_id ?? null, status: turn.response?.status ?? null, error: turn.error });
console.log(JSON.stringify({ first: shown(first), second: shown(second) }));
process.exit(0);
