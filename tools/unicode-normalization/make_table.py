#!/usr/bin/env python3
"""Writes the Unicode normalization table SharpTune embeds (src/SharpTune/Tokenization/Unicode/normalization-data.txt.gz)
and the conformance test data (tests/SharpTune.Tests/Tokenization/data/NormalizationTest.txt.gz) from the Unicode
Character Database. Input: Debian's `unicode-data` package (/usr/share/unicode, Unicode 15.0 on Debian 12, the version
of ICU 72 and of the Rust unicode-normalization tables HF tokenizers use). Dev-time only; the outputs are committed.

Table lines (hex code points): `cp ccc` for a character with a non-zero canonical combining class and no decomposition;
`cp ccc D d1 d2..` canonical decomposition (one step); `cp ccc K d1 d2..` compatibility decomposition (one step);
a trailing `X` on a two-character canonical decomposition marks a full composition exclusion. Hangul syllables are
algorithmic and not listed.
"""
import bz2, gzip, os, sys

UCD = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

excluded = set()
with open(os.path.join(UCD, "DerivedNormalizationProps.txt")) as f:
    for line in f:
        line = line.split("#")[0].strip()
        if not line: continue
        fields = [x.strip() for x in line.split(";")]
        if fields[1] != "Full_Composition_Exclusion": continue
        lo, _, hi = fields[0].partition("..")
        for cp in range(int(lo, 16), int(hi or lo, 16) + 1): excluded.add(cp)

out = []
with open(os.path.join(UCD, "UnicodeData.txt")) as f:
    for line in f:
        fields = line.split(";")
        cp, ccc, decomp = int(fields[0], 16), int(fields[3]), fields[5].strip()
        if 0xAC00 <= cp <= 0xD7A3: continue
        if not decomp and ccc == 0: continue
        row = f"{cp:X} {ccc}"
        if decomp:
            parts = decomp.split()
            kind = "D"
            if parts[0].startswith("<"):
                kind, parts = "K", parts[1:]
            row += f" {kind} " + " ".join(parts)
            if kind == "D" and len(parts) == 2 and cp in excluded: row += " X"
        out.append(row)

header = "# Unicode 15.0 normalization data for SharpTune (tools/unicode-normalization/make_table.py); see that script.\n"
data_path = os.path.join(root, "src/SharpTune/Tokenization/Unicode/normalization-data.txt.gz")
os.makedirs(os.path.dirname(data_path), exist_ok=True)
with gzip.GzipFile(data_path, "wb", mtime=0) as g: g.write((header + "\n".join(out) + "\n").encode())

test_src = os.path.join(UCD, "NormalizationTest.txt.bz2")
test_path = os.path.join(root, "tests/SharpTune.Tests/Tokenization/data/NormalizationTest.txt.gz")
with bz2.open(test_src, "rb") as src, gzip.GzipFile(test_path, "wb", mtime=0) as g: g.write(src.read())
print(f"{len(out)} table rows -> {data_path}; conformance test -> {test_path}")
