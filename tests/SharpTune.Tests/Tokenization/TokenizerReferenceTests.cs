using System.Diagnostics;
using System.Text.Json;
using SharpTune.Tokenization;
using Xunit.Abstractions;

namespace SharpTune.Tests.Tokenization;

/// <summary>Every corpus string must encode and decode exactly as @huggingface/tokenizers does.</summary>
public sealed class TokenizerReferenceTests(TokenizerData data, ITestOutputHelper output) : IClassFixture<TokenizerData>
{
    public static TheoryData<string> Names => new() { "llama2", "llama3", "qwen3", "gemma3" };

    [Theory]
    [MemberData(nameof(Names))]
    public void EncodeAndDecodeMatchTheReferenceOnTheWholeCorpus(string name)
    {
        var tokenizer = data.Tokenizer(name);
        var corpus = TokenizerData.Corpus();
        using var expected = TokenizerData.ReadGzipJson($"expected-{name}.json.gz");
        var cases = expected.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.Equal(corpus.Count, cases.Count);

        var failures = new List<string>();
        int idsOk = 0, plainOk = 0, decodeOk = 0, decodeSkipOk = 0;
        for (var i = 0; i < corpus.Count; i++)
        {
            var c = cases[i];
            var expectedIds = c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var expectedPlain = c.GetProperty("plain").ValueKind == JsonValueKind.Null
                ? expectedIds
                : c.GetProperty("plain").EnumerateArray().Select(x => x.GetInt32()).ToArray();
            var ids = tokenizer.Encode(corpus[i]).ToArray();
            var plain = tokenizer.Encode(corpus[i], addSpecialTokens: false).ToArray();
            if (ids.SequenceEqual(expectedIds)) idsOk++;
            else failures.Add($"#{i} {JsonSerializer.Serialize(corpus[i])}: ids [{string.Join(",", ids)}] expected [{string.Join(",", expectedIds)}]");
            if (plain.SequenceEqual(expectedPlain)) plainOk++;
            else failures.Add($"#{i} {JsonSerializer.Serialize(corpus[i])}: ids without special tokens [{string.Join(",", plain)}] expected [{string.Join(",", expectedPlain)}]");
            var decoded = tokenizer.Decode(expectedIds);
            if (decoded == c.GetProperty("decoded").GetString()) decodeOk++;
            else failures.Add($"#{i}: decode {JsonSerializer.Serialize(decoded)} expected {c.GetProperty("decoded").GetRawText()}");
            var decodedSkip = tokenizer.Decode(expectedIds, skipSpecialTokens: true);
            if (decodedSkip == c.GetProperty("decoded_skip").GetString()) decodeSkipOk++;
            else failures.Add($"#{i}: decode(skip_special_tokens) {JsonSerializer.Serialize(decodedSkip)} expected {c.GetProperty("decoded_skip").GetRawText()}");
        }
        output.WriteLine($"{name}: ids {idsOk}/{corpus.Count}, ids without special tokens {plainOk}/{corpus.Count}, decode {decodeOk}/{corpus.Count}, decode skip-special {decodeSkipOk}/{corpus.Count}");
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches, first: \n{string.Join("\n", failures.Take(15))}");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void BatchEncodingEqualsOneByOneAndReportsThroughput(string name)
    {
        var tokenizer = data.Tokenizer(name);
        var corpus = TokenizerData.Corpus();
        var single = corpus.Select(t => tokenizer.Encode(t, false)).ToList();

        // Fresh tokenizer so the per-word cache starts empty for the timing.
        var fresh = HfTokenizer.FromDirectory(Path.Combine(TokenizerData.DataDir, "tokenizers", name));
        var bytes = corpus.Sum(t => System.Text.Encoding.UTF8.GetByteCount(t));
        var watch = Stopwatch.StartNew();
        var tokens = 0L;
        for (var round = 0; round < 3; round++) foreach (var text in corpus) tokens += fresh.Encode(text, false).Count;
        var singleSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        var batch = fresh.EncodeBatch(corpus, false);
        var batchSeconds = watch.Elapsed.TotalSeconds;

        for (var i = 0; i < corpus.Count; i++) Assert.Equal(single[i], batch[i]);
        var js = JsonDocument.Parse(File.ReadAllText(Path.Combine(TokenizerData.DataDir, "tokenizers", name, "js-throughput.json"))).RootElement;
        var mbPerSecond = 3.0 * bytes / 1e6 / singleSeconds;
        output.WriteLine($"{name}: single thread {mbPerSecond:F2} MB/s, {tokens / singleSeconds:F0} tokens/s (first pass fills the word cache); " +
            $"batch {bytes / 1e6 / batchSeconds:F2} MB/s on {System.Environment.ProcessorCount} cores; " +
            $"@huggingface/tokenizers on the generating machine: {js.GetProperty("mb_per_second").GetDouble():F2} MB/s");
        Assert.True(tokens > corpus.Count, $"{tokens} tokens for {corpus.Count} strings");
    }
}
