// The official Node SDK against a live server: models, a streamed chat, embeddings.
// Usage: node smoke.mjs BASE_URL MODEL ; prints one JSON line with what it saw.
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "anything", maxRetries: 0 });

const models = [];
for await (const m of client.models.list()) models.push(m.id);

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: "user", content: "Write a sentence about the sea." }],
  temperature: 0,
  max_tokens: 12,
  stream: true,
});
const deltas = [];
let finishReason = null;
for await (const chunk of stream) {
  const choice = chunk.choices[0];
  if (choice?.delta?.content) deltas.push(choice.delta.content);
  if (choice?.finish_reason) finishReason = choice.finish_reason;
}

const embeddings = await client.embeddings.create({ model, input: ["hello", "world"] });

console.log(
  JSON.stringify({
    models,
    deltas,
    finishReason,
    embeddingCount: embeddings.data.length,
    embeddingLength: embeddings.data[0].embedding.length,
  }),
);
