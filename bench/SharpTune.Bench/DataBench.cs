using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Tokenization;

namespace SharpTune.Bench;

/// <summary>
/// Dataset preparation speed: writes N generated alpaca rows to a temporary jsonl, then tokenizes them with
/// <see cref="DataPipeline.Prepare(TrainConfig, HfTokenizer, string, Action{string}, DataOptions)"/> (llama3 tokenizer,
/// no prepared-data cache) and packs them with <see cref="BatchPlan"/> (sample packing, sequence 2048). Reports rows/s of
/// each phase and of both, and the process's peak resident set (VmHWM).
/// </summary>
public static class DataBench
{
    public const string Mode = "data";
    public const string Usage = "data [rows=100000] [seq=2048]   tokenize + pack N generated alpaca rows (llama3 tokenizer): rows/s, peak RSS";

    private static readonly string[] Verbs = ["Explain", "Summarize", "Translate", "List", "Describe", "Compare", "Write", "Classify"];
    private static readonly string[] Topics = ["photosynthesis", "the French Revolution", "binary search", "a healthy breakfast", "TCP handshakes",
        "climate models", "Shakespeare's sonnets", "the 2008 crisis", "garbage collection in .NET", "how vaccines work"];
    private static readonly string[] Words = ["the", "model", "data", "and", "of", "process", "quickly", "results", "between", "energy", "system",
        "because", "however", "example", "1984", "3.14", "naïve", "café", "数据", "😀", "it's", "don't", "value", "function", "returns"];

    public static int Run(string[] args)
    {
        int rows = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100_000;
        int seq = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2048;
        if (rows < 1 || seq < 64)
        {
            Console.Error.WriteLine("error: rows must be positive and seq ≥ 64");
            return 2;
        }
        var root = BenchSupport.RepoRoot();
        var dir = Path.Combine(Path.GetTempPath(), "sharptune-bench-data-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, "alpaca.jsonl");
            long bytes = WriteRows(path, rows);
            Console.WriteLine(BenchSupport.LoadLine());
            Console.WriteLine($"dataset: {rows} generated alpaca rows, {bytes / 1e6:F1} MB jsonl; tokenizer llama3; seq {seq}; rss before: {BenchSupport.ResidentMiB("VmRSS"):F0} MiB");
            var tokenizer = HfTokenizer.FromDirectory(Path.Combine(root, "tests", "SharpTune.Tests", "Tokenization", "data", "tokenizers", "llama3"));
            var config = new TrainConfig
            {
                OutputDir = Path.Combine(dir, "out"),
                SequenceLen = seq,
                SamplePacking = true,
                Datasets = [new DatasetConfig { Path = path, Type = "alpaca" }],
            };
            var warnings = 0;
            var watch = Stopwatch.StartNew();
            var prepared = DataPipeline.Prepare(config, tokenizer, dir, _ => warnings++, new DataOptions { UseCache = false });
            double tokenizeSeconds = watch.Elapsed.TotalSeconds;
            watch.Restart();
            var plan = new BatchPlan(prepared.Train, microBatchSize: 1, seq, packing: true, padToSequenceLen: false, padTokenId: 0, seed: config.Seed);
            long packedTokens = 0;
            for (int unit = 0; unit < plan.RowsPerEpoch; unit++) packedTokens += plan.Row(unit).InputIds.Length;   // materialise every packed row
            double packSeconds = watch.Elapsed.TotalSeconds;
            long tokens = prepared.Train.Sum(e => (long)e.InputIds.Length) + prepared.Eval.Sum(e => (long)e.InputIds.Length);
            Console.WriteLine($"  tokenize (DataPipeline.Prepare): {rows / tokenizeSeconds,9:F0} rows/s  {tokens / tokenizeSeconds,10:F0} tokens/s  ({tokenizeSeconds:F2} s; {prepared.Stats.RowsKept} rows kept, {tokens} tokens, {warnings} warnings)");
            Console.WriteLine($"  pack (BatchPlan, seq {seq}):     {prepared.Train.Count / packSeconds,9:F0} rows/s  ({packSeconds:F2} s; {plan.RowsPerEpoch} packed rows, {packedTokens} tokens, efficiency {plan.PackingEfficiency:P1})");
            Console.WriteLine($"  tokenize + pack:                 {rows / (tokenizeSeconds + packSeconds),9:F0} rows/s");
            Console.WriteLine($"  peak RSS (VmHWM): {BenchSupport.ResidentMiB("VmHWM"):F0} MiB; {Environment.ProcessorCount} cores");
            Console.WriteLine(BenchSupport.LoadLine());
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Seeded rows of varied length (a few to a few hundred words); a third have an input.</summary>
    private static long WriteRows(string path, int rows)
    {
        var random = new Random(17);
        string Sentence(int words) => string.Join(' ', Enumerable.Range(0, words).Select(_ => Words[random.Next(Words.Length)])) + ".";
        using (var writer = new StreamWriter(path))
            for (int i = 0; i < rows; i++)
            {
                var row = new JsonObject
                {
                    ["instruction"] = $"{Verbs[random.Next(Verbs.Length)]} {Topics[random.Next(Topics.Length)]} (case {i}).",
                    ["input"] = random.Next(3) == 0 ? Sentence(random.Next(5, 40)) : "",
                    ["output"] = string.Join(' ', Enumerable.Range(0, random.Next(1, 8)).Select(_ => Sentence(random.Next(4, 30)))),
                };
                writer.WriteLine(row.ToJsonString());
            }
        return new FileInfo(path).Length;
    }
}
