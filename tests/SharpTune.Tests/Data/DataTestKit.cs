using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Tokenization;

namespace SharpTune.Tests.Data;

/// <summary>Real tokenizers from the tokenizer tests' data and small helpers to build configs and data files.</summary>
internal static class DataTestKit
{
    private static readonly Lazy<HfTokenizer> Llama3Lazy = new(() => HfTokenizer.FromDirectory(TokenizerDir("llama3")));
    private static readonly Lazy<HfTokenizer> Qwen3Lazy = new(() => HfTokenizer.FromDirectory(TokenizerDir("qwen3")));
    private static readonly Lazy<HfTokenizer> Llama2Lazy = new(() => HfTokenizer.FromDirectory(TokenizerDir("llama2")));

    public static HfTokenizer Llama3 => Llama3Lazy.Value;
    public static HfTokenizer Qwen3 => Qwen3Lazy.Value;
    public static HfTokenizer Llama2 => Llama2Lazy.Value;

    public static string TokenizerDir(string name) => Path.Combine(TestPaths.RepoRoot, "tests", "SharpTune.Tests", "Tokenization", "data", "tokenizers", name);
    public static string Examples => Path.Combine(TestPaths.RepoRoot, "examples", "data");
    public static string DataDir => Path.Combine(TestPaths.RepoRoot, "tests", "SharpTune.Tests", "Data", "data");

    public static TrainConfig MakeConfig(string path, string type, string tokenizer = "llama3", int sequenceLen = 512, string? cache = null) => new()
    {
        BaseModel = TokenizerDir(tokenizer),
        Datasets = [new DatasetConfig { Path = path, Type = type }],
        SequenceLen = sequenceLen,
        DatasetPreparedPath = cache ?? TestPaths.TempDir(),
    };

    public static PreparedData Prepare(TrainConfig config, HfTokenizer tokenizer, List<string>? warnings = null, DataOptions? options = null) =>
        DataPipeline.Prepare(config, tokenizer, TestPaths.RepoRoot, w => warnings?.Add(w), options ?? new DataOptions());

    public static string WriteJsonl(params JsonNode[] rows)
    {
        string path = Path.Combine(TestPaths.TempDir(), "rows.jsonl");
        File.WriteAllLines(path, rows.Select(r => r.ToJsonString()));
        return path;
    }

    public static JsonObject Chat(params (string Role, string Content)[] turns) =>
        new() { ["messages"] = new JsonArray(turns.Select(t => (JsonNode)new JsonObject { ["role"] = t.Role, ["content"] = t.Content }).ToArray()) };

    /// <summary>Maximal runs of labelled positions: (start, ids).</summary>
    public static List<int[]> LabelledRuns(TokenizedExample e)
    {
        var runs = new List<int[]>();
        var current = new List<int>();
        for (int i = 0; i <= e.Labels.Length; i++)
        {
            if (i < e.Labels.Length && e.Labels[i] != TokenLabels.IgnoreIndex)
            {
                Assert.Equal(e.InputIds[i], e.Labels[i]);
                current.Add(e.Labels[i]);
            }
            else if (current.Count > 0)
            {
                runs.Add(current.ToArray());
                current.Clear();
            }
        }
        return runs;
    }
}
