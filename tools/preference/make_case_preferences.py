#!/usr/bin/env python3
"""Writes examples/data/case-preference.jsonl: a synthetic preference set whose preferred answers follow a rule.

"Shout: word" prefers the word in capitals ("WORD!") over small letters ("word."); "Whisper: word" prefers the
opposite. The prompt shows the word in either case at random, so neither "favour capitals" nor "copy the prompt" wins:
a model must read the instruction. Words are random letter strings, so held-out pairs hold unseen words.
Run from the repo root; the output is deterministic.
"""
import json, random

rng = random.Random(20261123)
seen = set()
rows = []
while len(rows) < 600:
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 6)))
    if word in seen:
        continue
    seen.add(word)
    shown = word.upper() if rng.random() < 0.5 else word
    loud, quiet = f"{word.upper()}!", f"{word}."
    if rng.random() < 0.5:
        rows.append({"prompt": f"Shout: {shown}", "chosen": loud, "rejected": quiet})
    else:
        rows.append({"prompt": f"Whisper: {shown}", "chosen": quiet, "rejected": loud})
with open("examples/data/case-preference.jsonl", "w") as f:
    for row in rows:
        f.write(json.dumps(row) + "\n")
