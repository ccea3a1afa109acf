#!/usr/bin/env python3
"""Trains small SentencePiece BPE models with the reference `spm_train` and records `spm_encode` ids (Debian package
`sentencepiece`; run from the repo root). Output: tests/SharpTune.Tests/Tokenization/data/sentencepiece/NAME/
tokenizer.model and expected.json ({"strings": [...], "ids": [[...]]}, no BOS). Tests then need neither tool.

Models: llama-like (dummy prefix, byte fallback, identity normalization, whitespace kept as is), gemma-like (no dummy
prefix, no byte fallback so unknown characters become <unk>, split digits, user-defined symbols) and collapse
(remove_extra_whitespaces as sentencepiece's default does).
"""
import gzip, json, os, subprocess, tempfile

ROOT = "tests/SharpTune.Tests/Tokenization/data"
corpus = json.load(open(f"{ROOT}/corpus.json"))
# spm_encode reads one string per line: keep single-line strings.
strings = [s for s in corpus if "\n" not in s and "\r" not in s and "\u2028" not in s and "\u2029" not in s and "\x0b" not in s and "\x0c" not in s and "\x85" not in s]
training = [s for s in strings if s.strip()] + [json.dumps(r) for r in json.load(open("examples/data/alpaca.json"))]

MODELS = {
    "llama-like": ["--vocab_size=1200", "--byte_fallback=true", "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
                   "--add_dummy_prefix=true", "--character_coverage=0.995", "--split_digits=true"],
    "gemma-like": ["--vocab_size=900", "--byte_fallback=false", "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
                   "--add_dummy_prefix=false", "--character_coverage=0.98", "--split_digits=true", "--user_defined_symbols=<tool>,<think>"],
    "collapse": ["--vocab_size=800", "--byte_fallback=true", "--normalization_rule_name=identity", "--add_dummy_prefix=true", "--character_coverage=0.995"],
}

with tempfile.TemporaryDirectory() as tmp:
    train_file = os.path.join(tmp, "train.txt")
    with open(train_file, "w", encoding="utf-8") as f:
        f.write("\n".join(training) + "\n")
    input_file = os.path.join(tmp, "input.txt")
    with open(input_file, "w", encoding="utf-8") as f:
        f.write("\n".join(strings) + "\n")
    for name, flags in MODELS.items():
        out = f"{ROOT}/sentencepiece/{name}"
        os.makedirs(out, exist_ok=True)
        prefix = os.path.join(tmp, name)
        subprocess.run(["spm_train", f"--input={train_file}", f"--model_prefix={prefix}", "--model_type=bpe", "--minloglevel=2",
                        "--bos_id=1", "--eos_id=2", "--unk_id=0", "--pad_id=-1", *flags], check=True)
        os.replace(prefix + ".model", f"{out}/tokenizer.model")
        encoded = subprocess.run(["spm_encode", f"--model={out}/tokenizer.model", "--output_format=id", f"--input={input_file}"],
                                 check=True, capture_output=True, text=True).stdout.split("\n")[:len(strings)]
        ids = [[int(x) for x in line.split()] for line in encoded]
        with gzip.open(f"{out}/expected.json.gz", "wt", encoding="utf-8") as f:
            json.dump({"strings": strings, "ids": ids}, f, ensure_ascii=False)
        print(name, len(strings), "strings")
