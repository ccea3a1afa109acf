"""Writes examples/data/reverse-prompts.jsonl: GRPO prompts for the word-reversal task of the quickstart.

Each row is a TRL-style conversational prompt plus the reference answer the exact_match reward compares with:
{"prompt": [{"role": "user", "content": "Reverse: abcd"}], "answer": "dcba"}
Words are random 4-letter strings that do not occur in examples/data/reverse.jsonl (the SFT warm-up data).
"""
import json
import random
from pathlib import Path

root = Path(__file__).resolve().parents[2]
seen = set()
for line in (root / "examples/data/reverse.jsonl").read_text().splitlines():
    seen.add(json.loads(line)["messages"][0]["content"].split(": ", 1)[1])

rng = random.Random(26)
rows, words = [], set()
while len(rows) < 800:
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(4))
    if word in seen or word in words:
        continue
    words.add(word)
    rows.append({"prompt": [{"role": "user", "content": f"Reverse: {word}"}], "answer": word[::-1]})
with open(root / "examples/data/reverse-prompts.jsonl", "w") as f:
    for row in rows:
        f.write(json.dumps(row) + "\n")
