// The Vercel AI SDK's OpenAI provider (npm `ai` + `@ai-sdk/openai`, pinned in package.json)
// against a live server: the Responses API (its default), with a stream, assistant history
// and a function tool, and chat completions streamed. Its own fetch and SSE parser, not
// OpenAI's SDK. Prints one JSON line of what it saw; a thrown error fails the test.
// Usage: node ai_sdk.mjs <base url with /v1> <model>
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText, tool } from "ai";
import { z } from "zod";

const [baseURL, model] = process.argv.slice(2);
const provider = createOpenAI({ baseURL, apiKey: "anything" });
const seen = {};

// Responses, streamed: text deltas as they come, the final usage.
const streamed = streamText({ model: provider.responses(model), prompt: "Count from 1 to 5.", maxOutputTokens: 16 });
seen.responsesDeltas = [];
for await (const delta of streamed.textStream) seen.responsesDeltas.push(delta);
seen.responsesUsage = await streamed.usage;
seen.responsesFinish = await streamed.finishReason;

// Responses with history: the SDK sends the assistant turn as `output_text` parts (no
// annotations, no logprobs, no item id) and the tool without `strict`.
const answered = await generateText({
  model: provider.responses(model),
  maxOutputTokens: 64,
  messages: [
    { role: "user", content: "My name is Alice." },
    { role: "assistant", content: "Hello Alice!" },
    { role: "user", content: "What is my name?" },
  ],
  tools: {
    get_weather: tool({
      description: "Get the current weather for a location",
      inputSchema: z.object({ location: z.string() }),
    }),
  },
  toolChoice: "required",
});
seen.historyText = answered.text;
seen.historyToolCalls = answered.toolCalls.map((call) => ({ name: call.toolName, input: call.input }));
seen.historyResponseId = answered.response.id;

// Chat completions, streamed.
const chat = streamText({ model: provider.chat(model), prompt: "Say hello.", maxOutputTokens: 8 });
seen.chatDeltas = [];
for await (const delta of chat.textStream) seen.chatDeltas.push(delta);
seen.chatFinish = await chat.finishReason;
seen.chatUsage = await chat.usage;

console.log(JSON.stringify(seen));
