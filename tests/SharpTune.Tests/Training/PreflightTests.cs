using System.Text.Json.Nodes;
using static SharpTune.Tests.CliRunner;

namespace SharpTune.Tests.Training;

/// <summary>
/// `validate` makes every check `train` makes before its first step (one preflight for both): each config here used to
/// pass validate and fail in train. Both commands now give the same line and exit 2, and neither changes the folder.
/// </summary>
public sealed class PreflightTests
{
    /// <summary>A folder with the tiny chat model, one without a chat template, 20 chat rows and an empty data folder.</summary>
    private static string Workspace()
    {
        string dir = TestPaths.TempDir();
        string examples = Path.Combine(TestPaths.RepoRoot, "examples");
        foreach (var model in new[] { "model", "no-template" })
        {
            Directory.CreateDirectory(Path.Combine(dir, model));
            foreach (var file in Directory.GetFiles(Path.Combine(examples, "models", "tiny-chat")))
                File.Copy(file, Path.Combine(dir, model, Path.GetFileName(file)));
        }
        var tokenizerConfig = Path.Combine(dir, "no-template", "tokenizer_config.json");
        var json = JsonNode.Parse(File.ReadAllText(tokenizerConfig))!.AsObject();
        json.Remove("chat_template");
        File.WriteAllText(tokenizerConfig, json.ToJsonString());
        File.WriteAllLines(Path.Combine(dir, "rows.jsonl"), File.ReadLines(Path.Combine(examples, "data", "reverse.jsonl")).Take(20));
        Directory.CreateDirectory(Path.Combine(dir, "empty"));
        return dir;
    }

    private static string Config(string dir, string path = "rows.jsonl", string dataset = "", string top = "", int sequenceLen = 64, string model = "model")
    {
        string file = Path.Combine(dir, "config.yaml");
        File.WriteAllText(file, $"base_model: ./{model}\ndatasets:\n  - path: {path}\n    type: chat_template\n{dataset}" +
                                $"sequence_len: {sequenceLen}\nmicro_batch_size: 2\nmax_steps: 1\noutput_dir: ./out\n{top}");
        return file;
    }

    public static TheoryData<string, string, string, string, int, string, string> Cases => new()
    {
        { "missing dataset file", "missing.jsonl", "", "", 64, "model",
            "datasets[0].path: missing.jsonl not found (tried DIR/missing.jsonl); expected a data file, folder, glob or a Hugging Face dataset id (owner/name)" },
        { "a dataset folder with no files", "empty", "", "", 64, "model",
            "datasets[0].path: folder DIR/empty holds no .json/.jsonl/.parquet/.csv/.tsv/.txt files" },
        { "no chat template to use", "rows.jsonl", "    chat_template: tokenizer_default\n", "", 64, "no-template",
            "datasets[0]: the tokenizer has no chat_template and none is configured; set chat_template: chatml (or llama3, jinja with chat_template_jinja)" },
        { "missing template file", "rows.jsonl", "", "chat_template: jinja\nchat_template_jinja: ./missing.jinja\n", 64, "model",
            "chat_template_jinja: ./missing.jinja is neither a template nor an existing file" },
        { "sequence_len too small for every row", "rows.jsonl", "", "", 4, "model",
            "datasets[0] (DIR/rows.jsonl): none of the 20 row(s) is usable (20 longer than sequence_len 4, 0 malformed)" },
        { "val_set_size larger than the data", "rows.jsonl", "", "val_set_size: 50\n", 64, "model",
            "val_set_size: 50 holds out 50 of 20 rows, leaving none to train on" },
        { "lora_target_modules matching nothing", "rows.jsonl", "", "adapter: lora\nlora_r: 4\nlora_target_modules: [query_key_value]\n", 64, "model",
            "lora_target_modules: no linear layer matches [query_key_value]; this model has: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj" },
        { "sequence_len beyond the model's positions", "rows.jsonl", "", "", 2147483647, "model",
            "sequence_len: 2147483647 is longer than base_model supports (max_position_embeddings 1024 in its config.json, and no rope_scaling to extend it); expected sequence_len ≤ 1024" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ValidateAndTrainStopAtTheSameCheckWithTheSameLine(string what, string path, string dataset, string top, int sequenceLen, string model, string expected)
    {
        string dir = Workspace();
        string config = Config(dir, path, dataset, top, sequenceLen, model);
        string line = $"error: {config}: {expected.Replace("DIR", dir)}";
        string before = ConfigTests.HostileConfigTests.Snapshot(dir);
        var validate = Run("validate", config);
        Assert.True(validate.Code == 2, what + ": " + validate.Err + validate.Out);
        Assert.Equal(line, validate.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.Equal(before, ConfigTests.HostileConfigTests.Snapshot(dir));
        var train = Run("train", config);
        Assert.True(train.Code == 2, what + ": " + train.Err + train.Out);
        Assert.Equal(line, train.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.False(File.Exists(Path.Combine(dir, "out", "model.safetensors")));
    }

    [Fact]
    public void AValidConfigReportsItsCheckedDataAndRopeScalingExtendsTheSequenceLimit()
    {
        string dir = Workspace();
        var validate = Run("validate", Config(dir));
        Assert.True(validate.Code == 0, validate.Err + validate.Out);
        Assert.Contains("data        20 train rows, 0 eval rows, 100 trainable tokens\n", validate.Out);
        Assert.EndsWith("config OK\n", validate.Out);
        Assert.False(Directory.Exists(Path.Combine(dir, "out")), "validate writes nothing (no prepared-data cache)");

        // Linear rope scaling by 4 stretches 1024 positions to 4096.
        string configJson = Path.Combine(dir, "model", "config.json");
        var json = JsonNode.Parse(File.ReadAllText(configJson))!.AsObject();
        json["rope_scaling"] = new JsonObject { ["type"] = "linear", ["factor"] = 4.0 };
        File.WriteAllText(configJson, json.ToJsonString());
        Assert.Equal(0, Run("validate", Config(dir, sequenceLen: 4096)).Code);
        var tooLong = Run("validate", Config(dir, sequenceLen: 4097));
        Assert.Equal($"error: {Path.Combine(dir, "config.yaml")}: sequence_len: 4097 is longer than base_model supports (rope_scaling linear with factor 4 over 1024 positions = 4096); expected sequence_len ≤ 4096\n", tooLong.Err);
        Assert.Equal(2, tooLong.Code);
    }
}
