// Renders sample conversations through every axolotl chat template SharpTune embeds
// (src/SharpTune/Tokenization/ChatTemplates/*.jinja) with @huggingface/jinja, for the C# test
// AxolotlChatTemplateTests. Run `node axolotl-templates.mjs && python3 render_axolotl_python.py`;
// the output is committed as tests/SharpTune.Tests/Tokenization/data/axolotl-template-cases.json.
import { Template } from "@huggingface/jinja";
import fs from "fs";
import path from "path";
import { fileURLToPath } from "url";

const here = path.dirname(fileURLToPath(import.meta.url));
const templateDir = path.resolve(here, "../../src/SharpTune/Tokenization/ChatTemplates");
const dataDir = path.resolve(here, "../../tests/SharpTune.Tests/Tokenization/data");
const sharpTuneOwn = new Set(["llama2", "mistral", "phi3"]);

// strftime_now is pinned to 2025-01-15 12:00 UTC so the expectations do not depend on the day they were made:
// @huggingface/jinja's strftime_now reads `new Date()` (and a context variable may not replace the global).
process.env.TZ = "UTC";
const RealDate = Date;
const pinned = RealDate.UTC(2025, 0, 15, 12, 0, 0);
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : [pinned]));
  }
  static now() {
    return pinned;
  }
};

const sys = (content) => ({ role: "system", content });
const user = (content) => ({ role: "user", content });
const assistant = (content) => ({ role: "assistant", content });
const parts = (role, text) => ({ role, content: [{ type: "text", text }] });

const conversations = [
  [user("Hello!")],
  [user("Hi"), assistant("Hello! How can I help?")],
  [sys("You are a helpful assistant."), user("What is 2+2?"), assistant("4")],
  [user("Hi"), assistant("Hello."), user("Tell me a joke."), assistant("Why did the chicken cross the road?")],
  [sys("Be terse."), user("  padded question  "), assistant("  padded answer  "), user("again")],
  [user("你好 😀 \"quotes\" and back\\slash"), assistant("multi\nline\nanswer")],
  [parts("user", "Describe this."), parts("assistant", "It is text.")],
  [user("one"), user("two")],
];

// Special tokens of the family each template belongs to (what its tokenizer would pass).
function specialTokens(name) {
  if (name.startsWith("llama3") || name === "llama4") return { bos_token: "<|begin_of_text|>", eos_token: "<|eot_id|>" };
  if (name.startsWith("gemma")) return { bos_token: "<bos>", eos_token: "<end_of_turn>" };
  if (name.startsWith("qwen") || name === "chatml" || name === "nemotron_h" || name === "falcon_h1") return { bos_token: "", eos_token: "<|im_end|>" };
  if (name.startsWith("deepseek")) return { bos_token: "<｜begin▁of▁sentence｜>", eos_token: "<｜end▁of▁sentence｜>" };
  if (name.startsWith("command_a") || name === "cohere" || name === "aya") return { bos_token: "<BOS_TOKEN>", eos_token: "<|END_OF_TURN_TOKEN|>" };
  if (name.startsWith("phi")) return { bos_token: "<s>", eos_token: "<|endoftext|>" };
  if (name.startsWith("exaone")) return { bos_token: "[BOS]", eos_token: "[|endofturn|]" };
  return { bos_token: "<s>", eos_token: "</s>" };
}

function render(source, context) {
  try {
    return { output: new Template(source).render(context) };
  } catch (e) {
    return { error: String(e.message ?? e) };
  }
}

const names = fs.readdirSync(templateDir).filter((f) => f.endsWith(".jinja")).map((f) => f.slice(0, -6))
  .filter((n) => !sharpTuneOwn.has(n)).sort();
const cases = [];
for (const name of names) {
  const source = fs.readFileSync(path.join(templateDir, `${name}.jinja`), "utf8");
  // Content parts only go to templates that read them (a text-only template concatenates the list: Python refuses,
  // @huggingface/jinja prints it, and neither is what a user wants).
  const readsParts = /\['text'\]|\["text"\]|selectattr|is iterable|is sequence/.test(source);
  for (const messages of conversations.filter((m) => readsParts || m.every((x) => typeof x.content === "string"))) {
    for (const add_generation_prompt of [false, true]) {
      const context = { ...specialTokens(name), messages, add_generation_prompt };
      cases.push({ template: name, context, ...render(source, context) });
    }
  }
}
fs.writeFileSync(path.join(dataDir, "axolotl-template-cases.json"), JSON.stringify({ templates: names, cases }, null, 1));
console.log(`axolotl templates: ${names.length}, cases: ${cases.length}, JS errors: ${cases.filter((c) => c.error).length}`);
