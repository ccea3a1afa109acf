// Encode throughput of the JS reference (@huggingface/tokenizers) for SharpTune's tokenizer bench.
// usage: node throughput.mjs TOKENIZER_DIR CORPUS_JSON [seconds=3]
// TOKENIZER_DIR holds tokenizer.json(.gz) and tokenizer_config.json(.gz); prints one JSON line.
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";
import path from "path";
import zlib from "zlib";

function readJson(dir, name) {
  const plain = path.join(dir, name);
  if (fs.existsSync(plain)) return JSON.parse(fs.readFileSync(plain, "utf8"));
  return JSON.parse(zlib.gunzipSync(fs.readFileSync(plain + ".gz")).toString("utf8"));
}

const [dir, corpusPath, secondsArg] = process.argv.slice(2);
const minSeconds = Number(secondsArg ?? 3);
const tokenizer = new Tokenizer(readJson(dir, "tokenizer.json"), readJson(dir, "tokenizer_config.json"));
const corpus = JSON.parse(fs.readFileSync(corpusPath, "utf8"));
const bytesPerPass = corpus.reduce((sum, text) => sum + Buffer.byteLength(text, "utf8"), 0);

for (const text of corpus) tokenizer.encode(text, { add_special_tokens: true });   // warm-up: JIT and caches
let passes = 0, tokens = 0;
const start = process.hrtime.bigint();
let seconds = 0;
do {
  for (const text of corpus) tokens += tokenizer.encode(text, { add_special_tokens: true }).ids.length;
  passes++;
  seconds = Number(process.hrtime.bigint() - start) / 1e9;
} while (seconds < minSeconds);
console.log(JSON.stringify({ passes, seconds, bytes: bytesPerPass * passes, tokens, mb_per_second: bytesPerPass * passes / 1e6 / seconds, tokens_per_second: tokens / seconds }));
