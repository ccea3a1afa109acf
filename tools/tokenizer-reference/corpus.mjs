// A deterministic, varied corpus: hand-picked edge cases plus seeded random mixtures of
// prose, code, numbers, emoji, CJK, RTL scripts, whitespace runs and special-token strings.
const fixed = [
  "", " ", "  ", "   ", "\n", "\n\n", "\n\n\n", "\t", "\t\t", " \n", "\n ", " \t \n ", "\r\n", "\r\n\r\n", "a\r\nb",
  "Hello world", "Hello  world", " Hello world", "  Hello world", "Hello world ", "Hello world  ", "hello\nworld", "hello\n\nworld",
  "The quick brown fox jumps over the lazy dog.", "THE QUICK BROWN FOX", "It's 5 o'clock; we're done, they'll go, I'd say, you've won, I'm here.",
  "IT'S LOUD", "don't", "DON'T", "'s", "'", "''", "\"quoted\"", "a'b'c", "rock'n'roll",
  "0", "1", "12", "123", "1234", "12345", "123456789", "3.14159", "-42", "+7", "1,000,000", "1e10", "0x1F", "2024-11-23", "12:55:00",
  "1 2 3", "1  2", "v1.2.3", "$100.00", "50%", "№5",
  "def f(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}", "SELECT * FROM users WHERE id = 1;",
  "<html><body><p>Hi</p></body></html>", "{\"key\": [1, 2, {\"x\": null}]}", "if x == y:\n        pass\n    else:\n        raise", "    indented", "\tindented",
  "    ", "        ", "a    b", "a\t\tb", "a \n b", "end.\n", "\n\nstart", "trailing   \n", "x  \n\n  y",
  "你好", "你好，世界！", "日本語のテキストです。", "한국어 텍스트", "中文 English 混合", "漢字かなカナ", "𠀀𠀁𠀂", "𝐀𝐁𝐂 math", "𝟘𝟙𝟚",
  "مرحبا بالعالم", "שלום עולם", "Привет, мир!", "Γειά σου Κόσμε", "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào thế giới", "Ñandú über straße café naïve",
  "e\u0301", "\u00e9", "Å", "A\u030a", "ﬁ ligature", "①②③", "ｆｕｌｌ ｗｉｄｔｈ", "\u200b", "a\u200db", "\u00a0nbsp", "\u3000ideographic space",
  "😀", "😀😀😀", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇯🇵", "I ❤️ NY", "✨ sparkles ✨", "🤖 robot: beep", " 😀", "a😀b",
  "<s>", "</s>", "<unk>", "<s>Hello</s>", "Hi <s> there", " <s> ", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
  "<|im_start|>user\nHello<|im_end|>\n", "<|im_start|>", "<|endoftext|>", "<think>\nhmm\n</think>\n\nok", "<tool_call>\n{}\n</tool_call>",
  "<bos>", "<eos>", "<pad>", "<start_of_turn>user\nHi<end_of_turn>\n", "<start_of_turn>model\n", "<mask>", "<|reserved_special_token_5|>",
  "<s><s></s>", "text<|im_end|>text", "<|im_end|><|im_end|>", "<|fim_prefix|>code<|fim_suffix|>", "<< SYS >>", "[INST] do [/INST]",
  "a".repeat(300), "ab".repeat(150), " ".repeat(40), "\n".repeat(40), "-".repeat(64), "=".repeat(33), "!!!???", "...", "…", "—", "–",
  "~`!@#$%^&*()_+-={}[]|\\:;\"'<>,.?/", "http://example.com/path?q=1&r=2#frag", "user@example.com", "C:\\Windows\\System32", "/usr/local/bin",
  "camelCaseIdentifier", "snake_case_identifier", "SCREAMING_CASE", "kebab-case-word", "__init__", "<|", "|>", "<", ">",
  "Ĳ", "Ġ", "▁", "▁▁hello", "byte\u0000zero", "\u0001\u0002", "\ufeffbom", "\ud7ff", "\ue000private",
];

const prose = [
  "The committee approved the proposal after a long debate.", "She sells sea shells by the sea shore.", "Machine learning models need data.",
  "Tokenization splits text into pieces.", "In 1969, humans first walked on the Moon.", "Please call me at 555-0199 tomorrow.",
  "Don't panic!", "What's the weather like today?", "A journey of a thousand miles begins with a single step.", "Résumé, façade, coöperate.",
  "The price rose by 12.5% to $1,234.56.", "Über-fast trains connect Zürich and Genève.",
];
const code = [
  "const x = await fetch(url);", "import numpy as np", "public sealed class Foo { }", "x += 1; // increment", "#include <stdio.h>",
  "fn main() { println!(\"hi\"); }", "  return a[i] + b[j];", "lambda x: x**2", "SELECT name FROM t;", "<div class=\"a\">", "}\n}\n", "\tif (ok) {",
];
const numbers = ["0", "7", "42", "314", "2718", "16384", "1000000", "3.5", "0.001", "-1", "99.99", "2^10", "1/3", "12345678901234567890"];
const emoji = ["😀", "🚀", "🔥", "👍", "🎉", "🇺🇸", "❤️", "🧑‍💻", "🙏🏿", "⭐"];
const cjk = ["東京", "北京大学", "こんにちは", "カタカナ", "서울", "机器学习", "自然言語処理", "漢", "。", "、", "「引用」"];
const rtl = ["مرحبا", "كتاب", "שלום", "ספר", "سلام دنیا", "اردو"];
const whitespace = [" ", "  ", "   ", "\n", "\n\n", "\t", " \n", "\n  ", "\r\n", "    ", "\t\n"];
const specials = ["<s>", "</s>", "<|begin_of_text|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<think>", "</think>", "<unk>", "<pad>"];
const words = ["the", "of", "and", "token", "Hello", "WORLD", "don't", "it's", "naïve", "über", "data", "x", "I", "A", "model", "GPT", "llama"];
const pools = [prose, code, numbers, emoji, cjk, rtl, whitespace, specials, words];

function mulberry32(seed) {
  return function () {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function buildCorpus(total = 2200) {
  const random = mulberry32(20261123);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const corpus = [...fixed];
  while (corpus.length < total) {
    const parts = 1 + Math.floor(random() * 8);
    let text = "";
    for (let i = 0; i < parts; i++) {
      const pool = pick(pools);
      text += pick(pool);
      const r = random();
      if (r < 0.45) text += " ";
      else if (r < 0.55) text += pick(whitespace);
    }
    if (random() < 0.1) text = " " + text;
    corpus.push(text);
  }
  return corpus;
}
