using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Tokenization;
using SharpTune.Tokenization.Unicode;

namespace SharpTune.Tests.Tokenization;

public sealed class UnicodeNormalizationTests
{
    private static readonly UnicodeNormalization Normalizer = UnicodeNormalization.Instance;

    /// <summary>
    /// Unicode's own conformance test (NormalizationTest.txt of Unicode 15.0, copied by
    /// tools/unicode-normalization/make_table.py): every invariant of UAX #15 §"Conformance testing" for all five columns,
    /// and Part 1's rule that every code point it does not list normalizes to itself in all four forms.
    /// </summary>
    [Fact]
    public void PassesTheUnicodeConformanceTest()
    {
        using var reader = new StreamReader(new GZipStream(File.OpenRead(Path.Combine(TokenizerData.DataDir, "NormalizationTest.txt.gz")), CompressionMode.Decompress));
        var part1 = new HashSet<int>();
        bool inPart1 = false;
        int lines = 0, failures = 0;
        var firstFailures = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            if (line.StartsWith("@Part")) { inPart1 = line.StartsWith("@Part1"); continue; }
            var data = line.Split('#')[0].Trim();
            if (data.Length == 0) continue;
            var c = data.Split(';', StringSplitOptions.RemoveEmptyEntries).Take(5).Select(Decode).ToArray();
            if (inPart1) part1.Add(char.ConvertToUtf32(c[0], 0));
            lines++;
            void Check(string expected, NormalForm form, params int[] columns)
            {
                foreach (var column in columns)
                {
                    var actual = Normalizer.Normalize(c[column], form);
                    if (actual == expected) continue;
                    failures++;
                    if (firstFailures.Count < 10) firstFailures.Add($"{form}(c{column + 1}) of {data}: got {Hex(actual)}");
                }
            }
            Check(c[1], NormalForm.Nfc, 0, 1, 2);
            Check(c[3], NormalForm.Nfc, 3, 4);
            Check(c[2], NormalForm.Nfd, 0, 1, 2);
            Check(c[4], NormalForm.Nfd, 3, 4);
            Check(c[3], NormalForm.Nfkc, 0, 1, 2, 3, 4);
            Check(c[4], NormalForm.Nfkd, 0, 1, 2, 3, 4);
        }
        int invariantChecked = 0;
        for (var cp = 0; cp <= 0x10FFFF; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF || part1.Contains(cp)) continue;
            var text = char.ConvertFromUtf32(cp);
            foreach (var form in Enum.GetValues<NormalForm>())
            {
                if (Normalizer.Normalize(text, form) == text) continue;
                failures++;
                if (firstFailures.Count < 10) firstFailures.Add($"{form} changes unlisted U+{cp:X4}");
            }
            invariantChecked++;
        }
        Assert.True(lines > 19000, $"only {lines} test lines read");
        Assert.True(failures == 0, $"{failures} failures over {lines} lines and {invariantChecked} unlisted code points:\n" + string.Join("\n", firstFailures));
    }

    [Fact]
    public void EveryOutputCharPointsAtTheInputCharItCameFrom()
    {
        // "ﬁ" (1 char) → "fi" under NFKD; "e" + U+0301 → "é" under NFC (the composite points at its starter).
        Assert.Equal("fi", Normalizer.Normalize("\uFB01", NormalForm.Nfkd, out var ligature));
        Assert.Equal([0, 0], ligature);
        Assert.Equal("Caf\u00E9!", Normalizer.Normalize("Cafe\u0301!", NormalForm.Nfc, out var composed));
        Assert.Equal([0, 1, 2, 3, 5], composed);
        // Canonical reordering keeps each mark's origin: U+0301 (ccc 230) after U+0323 (ccc 220) in NFD.
        Assert.Equal("a\u0323\u0301", Normalizer.Normalize("a\u0301\u0323", NormalForm.Nfd, out var reordered));
        Assert.Equal([0, 2, 1], reordered);
        // A supplementary character decomposes into two chars of one origin (U+1D15E MUSICAL SYMBOL HALF NOTE).
        Assert.Equal("\U0001D157\U0001D165", Normalizer.Normalize("x\U0001D15E", NormalForm.Nfc, out var musical)[1..]);
        Assert.Equal([0, 1, 1, 1, 1], musical);
    }

    /// <summary>
    /// The built CLI (InvariantGlobalization, as shipped) on decomposed and compatibility input, one tokenizer per
    /// normalizer form: qwen3's real tokenizer.json (NFC; transformers gives [34, 2577, 963] for "Cafe" + U+0301) and
    /// copies of it whose normalizer is NFD, NFKC or NFKD, each checked against the ids of the already-normalized text.
    /// </summary>
    [Theory]
    [InlineData("NFC", "Cafe\u0301", "Caf\u00E9")]
    [InlineData("NFD", "Caf\u00E9", "Cafe\u0301")]
    [InlineData("NFKC", "\uFB01ne \uFF23afe\u0301", "fine Caf\u00E9")]
    [InlineData("NFKD", "\uFB01 Caf\u00E9 \u2460", "fi Cafe\u0301 1")]
    public void TheShippedCliNormalizesLikeTransformers(string form, string input, string normalized)
    {
        var dir = TestPaths.TempDir();
        var tokenizer = WriteQwen3Variant(Path.Combine(dir, form), new JsonObject { ["type"] = form });
        var unnormalized = WriteQwen3Variant(Path.Combine(dir, "none"), null);
        var output = Path.Combine(dir, "ids.json");
        var (code, _, stderr) = CliRunner.RunBuilt(["tokenize", "--tokenizer", tokenizer, "--text", input, "--output", output]);
        Assert.True(code == 0, stderr);
        var ids = JsonDocument.Parse(File.ReadAllText(output)).RootElement.GetProperty("input_ids")[0].EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.Equal(HfTokenizer.FromDirectory(unnormalized).Encode(normalized, false), ids);
        if (form == "NFC") Assert.Equal([34, 2577, 963], ids);
    }

    private static string WriteQwen3Variant(string dir, JsonObject? normalizer)
    {
        Directory.CreateDirectory(dir);
        var source = Path.Combine(TokenizerData.DataDir, "tokenizers", "qwen3");
        using var stream = new GZipStream(File.OpenRead(Path.Combine(source, "tokenizer.json.gz")), CompressionMode.Decompress);
        var json = JsonNode.Parse(stream)!.AsObject();
        json["normalizer"] = normalizer;
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
        File.Copy(Path.Combine(source, "tokenizer_config.json.gz"), Path.Combine(dir, "tokenizer_config.json.gz"));
        return dir;
    }

    private static string Decode(string column) =>
        string.Concat(column.Trim().Split(' ').Select(h => char.ConvertFromUtf32(Convert.ToInt32(h, 16))));

    private static string Hex(string s) => string.Join(' ', s.EnumerateRunes().Select(r => r.Value.ToString("X4")));
}
