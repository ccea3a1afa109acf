using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text.Json;
using SharpTune.Tokenization;

namespace SharpTune.Tests.Tokenization;

/// <summary>Reference data written by tools/tokenizer-reference/generate.mjs (@huggingface/tokenizers and @huggingface/jinja).</summary>
public sealed class TokenizerData
{
    public static string DataDir => Path.Combine(TestPaths.RepoRoot, "tests", "SharpTune.Tests", "Tokenization", "data");

    private readonly ConcurrentDictionary<string, HfTokenizer> _tokenizers = new();

    /// <summary>Tokenizers load once per test class (gemma3's tokenizer.json is 33 MB).</summary>
    public HfTokenizer Tokenizer(string name) => _tokenizers.GetOrAdd(name, n => HfTokenizer.FromDirectory(Path.Combine(DataDir, "tokenizers", n)));

    public static IReadOnlyList<string> Corpus() =>
        JsonSerializer.Deserialize<List<string>>(File.ReadAllText(Path.Combine(DataDir, "corpus.json")))!;

    public static JsonDocument ReadGzipJson(string file)
    {
        using var stream = new GZipStream(File.OpenRead(Path.Combine(DataDir, file)), CompressionMode.Decompress);
        return JsonDocument.Parse(stream);
    }

    public static JsonDocument ReadJson(string file) => JsonDocument.Parse(File.ReadAllText(Path.Combine(DataDir, file)));
}
