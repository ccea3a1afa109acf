// Reads a GGUF file back with @huggingface/gguf (metadata) and llama.cpp through node-llama-cpp (greedy continuation of
// given token ids, per-step top log-probabilities, perplexity of a held-out id sequence). Prints one JSON object.
// Usage: node check.mjs REQUESTS.json   where REQUESTS is a list of
//   {"model": "x.gguf", "prompt": [ids], "maxNewTokens": 8, "perplexityIds": [ids] (optional), "contextSize": 128,
//    "text": "..." (optional)}
// and the output a list of {metadata, tensors, greedy, steps: [{vocab, top: [[id, logprob], ...]}], perplexity, textTokens}.
import fs from "node:fs";
import { gguf } from "@huggingface/gguf";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const requests = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.error });
const plain = (v) => (typeof v === "bigint" ? Number(v) : Array.isArray(v) ? v.map(plain) : v);

const top = (probabilities, k) => [...probabilities.entries()].slice(0, k).map(([token, p]) => [token, Math.log(p)]);
const withNext = (token) => [token, { generateNext: { probabilities: true } }];

async function check(request) {
const { metadata, tensorInfos } = await gguf(request.model, { allowLocalFile: true });
const meta = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, plain(v)]));
const tensors = tensorInfos.map((t) => ({ name: t.name, shape: t.shape.map(Number), dtype: t.dtype }));

const model = await llama.loadModel({ modelPath: request.model, gpuLayers: 0 });
const context = await model.createContext({ contextSize: request.contextSize ?? 128, batchSize: request.contextSize ?? 128, sequences: 2, threads: 1 });

// Greedy: the most probable next token at each step (probabilities are sorted, highest first).
let sequence = context.getSequence();
const greedy = [], steps = [];
let results = await sequence.controlledEvaluate(request.prompt.map((t, i) => (i === request.prompt.length - 1 ? withNext(t) : t)));
for (let step = 0; step < request.maxNewTokens; step++) {
  const probabilities = results[results.length - 1].next.probabilities;
  const token = probabilities.keys().next().value;
  greedy.push(token);
  steps.push({ vocab: probabilities.size, top: top(probabilities, 3) });
  if (step + 1 < request.maxNewTokens) results = await sequence.controlledEvaluate([withNext(token)]);
}
sequence.dispose();

let perplexity = null;
if (request.perplexityIds) {
  sequence = context.getSequence();
  const ids = request.perplexityIds;
  const out = await sequence.controlledEvaluate(ids.map((t, i) => (i < ids.length - 1 ? withNext(t) : t)));
  let nll = 0;
  for (let i = 0; i + 1 < ids.length; i++) nll -= Math.log(out[i].next.probabilities.get(ids[i + 1]) ?? 0);
  perplexity = Math.exp(nll / (ids.length - 1));
  sequence.dispose();
}
// llama.cpp's own tokenization of a text (no BOS added), to compare with the HF tokenizer's.
const textTokens = request.text === undefined ? null : [...model.tokenize(request.text)];
await context.dispose();
await model.dispose();
return { metadata: meta, tensors, greedy, steps, perplexity, textTokens };
}

const results = [];
for (const request of requests) results.push(await check(request));
process.stdout.write(JSON.stringify(results) + "\n");
