// Drives a running `sharptune serve` with the official openai client.
// Usage: OPENAI_BASE_URL=http://127.0.0.1:8000/v1 OPENAI_API_KEY=KEY node test.mjs
// Prints one JSON line of results and exits 0 when every check passes, 1 otherwise.
import OpenAI from "openai";
import assert from "node:assert/strict";

const baseURL = process.env.OPENAI_BASE_URL ?? "http://127.0.0.1:8000/v1";
const apiKey = process.env.OPENAI_API_KEY ?? "none";
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const results = {};

async function expectError(promise, status, code) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `expected an APIError, got ${e}`);
    assert.equal(e.status, status);
    if (code) assert.equal(e.code, code);
    return e;
  }
  assert.fail(`expected HTTP ${status}`);
}

try {
  const models = await client.models.list();
  const model = models.data[0].id;
  results.model = model;

  const messages = [{ role: "user", content: "Say something." }];
  const chat = await client.chat.completions.create({ model, messages, max_tokens: 8 });
  assert.equal(chat.object, "chat.completion");
  assert.equal(chat.choices[0].message.role, "assistant");
  assert.equal(typeof chat.choices[0].message.content, "string");
  assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);
  results.chat = chat.choices[0].message.content;

  const stream = await client.chat.completions.create({ model, messages, max_tokens: 8, stream: true, stream_options: { include_usage: true } });
  let streamed = "";
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      streamed += choice.delta?.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
  }
  assert.equal(streamed, results.chat, "streamed text equals the non-streamed text (greedy)");
  assert.equal(finish, chat.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, chat.usage.completion_tokens);
  results.stream = streamed;

  const completion = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 5 });
  assert.equal(completion.object, "text_completion");
  assert.equal(typeof completion.choices[0].text, "string");
  results.completion_tokens = completion.usage.completion_tokens;

  const completionStream = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 5, stream: true });
  let completionText = "";
  for await (const chunk of completionStream) completionText += chunk.choices[0]?.text ?? "";
  assert.equal(completionText, completion.choices[0].text);

  const unauthorized = new OpenAI({ baseURL, apiKey: "wrong-key", maxRetries: 0 });
  await expectError(unauthorized.chat.completions.create({ model, messages }), 401, "invalid_api_key");
  await expectError(client.chat.completions.create({ model, messages, n: 2 }), 400);
  const tooLong = await expectError(
    client.chat.completions.create({ model, messages: [{ role: "user", content: "word ".repeat(5000) }] }), 400, "context_length_exceeded");
  results.too_long_message = tooLong.error?.message ?? tooLong.message;

  const after = await client.chat.completions.create({ model, messages, max_tokens: 2 });
  assert.equal(after.choices.length, 1);

  const parallel = await Promise.all(Array.from({ length: 20 }, () => client.chat.completions.create({ model, messages, max_tokens: 3 })));
  assert.ok(parallel.every((p) => p.choices.length === 1));
  results.parallel = parallel.length;

  console.log(JSON.stringify({ ok: true, ...results }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: String(e?.stack ?? e), ...results }));
  process.exit(1);
}
