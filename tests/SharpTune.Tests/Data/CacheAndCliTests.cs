using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

public class CacheAndCliTests
{
    [Fact]
    public void Second_run_loads_the_cache_and_changed_inputs_miss_it()
    {
        string dir = TestPaths.TempDir();
        string file = Path.Combine(dir, "train.jsonl");
        File.Copy(Path.Combine(Examples, "chat.jsonl"), file);
        string cache = Path.Combine(dir, "prepared");
        var config = MakeConfig(file, "chat_template", cache: cache) with { ValSetSize = 0.1 };
        var log = new List<string>();
        var options = new DataOptions { Log = log.Add };

        var first = Prepare(config, Llama3, options: options);
        Assert.False(first.Stats.FromCache);
        Assert.Equal([first.Stats.CacheKey], Directory.GetDirectories(cache).Select(Path.GetFileName));
        var second = Prepare(config, Llama3, options: options);
        Assert.True(second.Stats.FromCache);
        Assert.Equal($"loaded prepared dataset from {Path.Combine(cache, first.Stats.CacheKey)} (no tokenizing)", log[^1]);
        Assert.Equal(first.Train.Select(r => r.InputIds), second.Train.Select(r => r.InputIds));
        Assert.Equal(first.Eval.Select(r => r.Labels), second.Eval.Select(r => r.Labels));
        Assert.Equal(first.Stats.TrainableTokens, second.Stats.TrainableTokens);

        var longer = Prepare(config with { SequenceLen = 1024 }, Llama3, options: options);
        Assert.False(longer.Stats.FromCache);
        Assert.NotEqual(first.Stats.CacheKey, longer.Stats.CacheKey);
        var packed = Prepare(config with { SamplePacking = true }, Llama3, options: options);
        Assert.NotEqual(first.Stats.CacheKey, packed.Stats.CacheKey);

        File.AppendAllText(file, Chat(("user", "One more?"), ("assistant", "Yes.")).ToJsonString() + "\n");
        var grown = Prepare(config, Llama3, options: options);
        Assert.False(grown.Stats.FromCache);
        Assert.Equal(61, grown.Stats.RowsRead);
        Assert.Equal(4, Directory.GetDirectories(cache).Length);
        Assert.Empty(Directory.GetDirectories(cache, ".*"));
    }

    [Fact]
    public void Preference_pairs_round_trip_through_the_cache()
    {
        string cache = TestPaths.TempDir();
        var config = MakeConfig(Path.Combine(Examples, "preference.jsonl"), "chat_template.default", cache: cache) with { Rl = RlType.Dpo };
        var first = Prepare(config, Llama3);
        var second = Prepare(config, Llama3);
        Assert.True(second.Stats.FromCache);
        Assert.Equal(40, second.PreferenceTrain.Count);
        Assert.Equal(first.PreferenceTrain[7].RejectedIds, second.PreferenceTrain[7].RejectedIds);
        Assert.Equal(first.PreferenceTrain[7].PromptIds, second.PreferenceTrain[7].PromptIds);
    }

    [Fact]
    public void Prepare_command_prints_counts_and_exports_rows()
    {
        string dir = TestPaths.TempDir();
        string yaml = Path.Combine(dir, "config.yaml");
        File.WriteAllText(yaml, $"""
            base_model: {TokenizerDir("llama3")}
            datasets:
              - path: {Path.Combine(Examples, "alpaca.json")}
                type: alpaca
            sequence_len: 512
            sample_packing: true
            dataset_prepared_path: {Path.Combine(dir, "prepared")}
            output_dir: {Path.Combine(dir, "out")}
            """);
        string export = Path.Combine(dir, "rows.jsonl");
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = SharpTune.Cli.Program.Run(["prepare", yaml, "--export-jsonl", export], stdout, stderr);
        Assert.True(code == 0, stderr.ToString());
        string text = stdout.ToString();
        Assert.Contains("rows read        120 in ", text);
        Assert.Contains("rows kept        120 (train 120, eval 0)", text);
        Assert.Contains("dropped          too long 0, no trainable tokens 0, malformed 0, duplicate 0; truncated 0", text);
        var lines = File.ReadAllLines(export);
        Assert.Contains($"exported {lines.Length} rows to {export}", text);
        var first = JsonNode.Parse(lines[0])!.AsObject();
        Assert.Equal(["input_ids", "labels", "position_ids", "segment_ids", "text"], first.Select(p => p.Key));
        Assert.Equal(first["input_ids"]!.AsArray().Count, first["labels"]!.AsArray().Count);
        Assert.Equal(120, lines.Sum(l => JsonNode.Parse(l)!["segment_ids"]!.AsArray().Select(s => s!.GetValue<int>()).Distinct().Count()));

        var rerun = new StringWriter();
        Assert.Equal(0, SharpTune.Cli.Program.Run(["prepare", yaml, "--set", "micro_batch_size=2"], rerun, stderr));
        Assert.Contains("rows read        120 (from cache)", rerun.ToString());
    }

    [Fact]
    public void Prepare_command_exits_2_with_one_line_on_bad_data()
    {
        string dir = TestPaths.TempDir();
        string data = Path.Combine(dir, "bad.jsonl");
        File.WriteAllText(data, "{\"instruction\": \"x\"}\n");
        string yaml = Path.Combine(dir, "config.yaml");
        File.WriteAllText(yaml, $"base_model: {TokenizerDir("llama3")}\ndatasets:\n  - path: bad.jsonl\n    type: alpaca\noutput_dir: {Path.Combine(dir, "out")}\n");
        var stderr = new StringWriter();
        Assert.Equal(2, SharpTune.Cli.Program.Run(["prepare", yaml], new StringWriter(), stderr));
        Assert.Equal($"error: {data}:1: missing field \"output\" (alpaca rows need instruction and output, optionally input and system); found keys: instruction (datasets[0], type alpaca)",
            stderr.ToString().Trim().Split('\n')[^1]);
    }
}
