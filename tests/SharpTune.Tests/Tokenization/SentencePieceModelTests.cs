using SharpTune.Tokenization;

namespace SharpTune.Tests.Tokenization;

/// <summary>
/// tokenizer.model-only folders: SentencePiece BPE models trained with the reference spm_train and encoded with
/// spm_encode (tools/sentencepiece-reference/make_vectors.py) must give the same ids through the converted tokenizer.
/// </summary>
public sealed class SentencePieceModelTests
{
    private static string ModelDir(string name) => Path.Combine(TokenizerData.DataDir, "sentencepiece", name);

    [Theory]
    [InlineData("llama-like")]
    [InlineData("gemma-like")]
    [InlineData("collapse")]
    public void IdsEqualSentencePiecesOwnEncoder(string name)
    {
        var tokenizer = HfTokenizer.FromDirectory(ModelDir(name));
        using var expected = TokenizerData.ReadGzipJson(Path.Combine("sentencepiece", name, "expected.json.gz"));
        var strings = expected.RootElement.GetProperty("strings").EnumerateArray().Select(s => s.GetString()!).ToList();
        var ids = expected.RootElement.GetProperty("ids").EnumerateArray().Select(row => row.EnumerateArray().Select(i => i.GetInt32()).ToArray()).ToList();
        Assert.True(strings.Count > 1300);
        // Control pieces written in the text ("<s>") are special tokens to transformers (one id), plain text to spm_encode.
        var controls = new[] { "<s>", "</s>", "<unk>" };
        var compared = Enumerable.Range(0, strings.Count).Where(i => !controls.Any(c => strings[i].Contains(c, StringComparison.Ordinal))).ToList();
        Assert.True(compared.Count > 1200);
        var mismatches = compared.Where(i => !tokenizer.Encode(strings[i], addSpecialTokens: false).SequenceEqual(ids[i])).ToList();
        Assert.True(mismatches.Count == 0, mismatches.Count == 0 ? "" :
            $"{mismatches.Count} of {compared.Count} differ; first '{strings[mismatches[0]]}': expected [{string.Join(",", ids[mismatches[0]])}], got [{string.Join(",", tokenizer.Encode(strings[mismatches[0]], false))}]");
    }

    [Fact]
    public void SpecialPiecesBosAndDecodeFollowLlamaTokenizer()
    {
        var tokenizer = HfTokenizer.FromDirectory(ModelDir("llama-like"));
        Assert.Equal((1, 2, 0), (tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.UnkTokenId));
        Assert.Equal(("<s>", "</s>"), (tokenizer.BosToken, tokenizer.EosToken));
        var withBos = tokenizer.Encode("Hello world");
        Assert.Equal(1, withBos[0]);
        Assert.Equal(tokenizer.Encode("Hello world", false), withBos.Skip(1));
        Assert.Equal("Hello world", tokenizer.Decode(withBos, skipSpecialTokens: true));
        Assert.Equal("tab\tand ✓ bytes", tokenizer.Decode(tokenizer.Encode("tab\tand ✓ bytes", false)));
    }

    [Fact]
    public void UnsupportedModelsAreRefusedWithTheReason()
    {
        var dir = TestPaths.TempDir();
        File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), [0x0a, 0x03, 0x0a, 0x01, 0x61]);   // one piece "a", no trainer spec: unigram
        var e = Assert.Throws<InvalidInputException>(() => HfTokenizer.FromDirectory(dir));
        Assert.Equal($"{Path.Combine(dir, "tokenizer.model")}: SentencePiece model type unigram is not supported; supported: bpe (Llama, Mistral, Gemma) — or give a tokenizer.json", e.Message);
        File.WriteAllBytes(Path.Combine(dir, "tokenizer.model"), [0xff, 0xff, 0xff]);
        e = Assert.Throws<InvalidInputException>(() => HfTokenizer.FromDirectory(dir));
        Assert.StartsWith($"{Path.Combine(dir, "tokenizer.model")}: not a SentencePiece model (", e.Message);
    }
}
