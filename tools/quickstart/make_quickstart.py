#!/usr/bin/env python3
"""Writes the quickstart's bundled tokenizer, model config and letter-reversal chat data (run from the repo root).

The tokenizer is byte-level BPE without merges (one token per byte) plus ChatML specials, so a tiny model can learn
character-level tasks in a couple of minutes on a CPU. Weights come from `sharptune init-model --config`.
"""
import json, os, random

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return dict(zip(bs, [chr(c) for c in cs]))

model_dir = "examples/models/tiny-chat"
os.makedirs(model_dir, exist_ok=True)
mapping = bytes_to_unicode()
vocab = {mapping[b]: b for b in range(256)}
specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
added = [{"id": 256 + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True} for i, s in enumerate(specials)]
for i, s in enumerate(specials):
    vocab[s] = 256 + i
tokenizer = {
    "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": True},
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
              "fuse_unk": False, "byte_fallback": False, "ignore_merges": False, "vocab": vocab, "merges": []},
}
json.dump(tokenizer, open(f"{model_dir}/tokenizer.json", "w"), ensure_ascii=False, indent=1)
chat_template = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
json.dump({
    "added_tokens_decoder": {str(t["id"]): {k: t[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")} for t in added},
    "bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": None,
    "chat_template": chat_template, "clean_up_tokenization_spaces": False, "model_max_length": 128,
    "tokenizer_class": "PreTrainedTokenizerFast",
}, open(f"{model_dir}/tokenizer_config.json", "w"), indent=2)
json.dump({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "torch_dtype": "float32", "vocab_size": 259,
    "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 128, "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "tie_word_embeddings": True,
    "initializer_range": 0.02, "bos_token_id": None, "eos_token_id": 258, "pad_token_id": 256, "hidden_act": "silu",
    "attention_bias": False, "mlp_bias": False, "rope_scaling": None, "use_cache": True,
}, open(f"{model_dir}/config.json", "w"), indent=2)

random.seed(20261123)
letters = "abcdefghijklmnopqrstuvwxyz"
seen = set()
rows = []
while len(rows) < 3000:
    word = "".join(random.choice(letters) for _ in range(4))
    if word in seen:
        continue
    seen.add(word)
    rows.append({"messages": [{"role": "user", "content": f"Reverse: {word}"}, {"role": "assistant", "content": word[::-1]}]})
os.makedirs("examples/data", exist_ok=True)
with open("examples/data/reverse.jsonl", "w") as f:
    for row in rows:
        f.write(json.dumps(row) + "\n")
print("wrote", model_dir, "and examples/data/reverse.jsonl", len(rows))
