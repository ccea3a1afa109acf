using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Tokenization;
using static SharpTune.Tests.CliRunner;

namespace SharpTune.Tests.Training;

/// <summary>pretraining_dataset: documents streamed in order, tokenized with EOS, cut into sequence_len rows; exact resume.</summary>
public sealed class PretrainStreamTests
{
    private static string TinyChat => Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat");

    private static string Documents(int count)
    {
        string path = Path.Combine(TestPaths.TempDir(), "docs.jsonl");
        File.WriteAllLines(path, Enumerable.Range(0, count).Select(i => new JsonObject { ["content"] = $"Document {i} says {i * 7 % 10} and ends." }.ToJsonString()));
        return path;
    }

    [Fact]
    public void Rows_are_the_documents_with_eos_cut_into_sequence_len_and_a_cursor_continues_exactly()
    {
        var tokenizer = HfTokenizer.FromDirectory(TinyChat);
        string docs = Documents(5);
        var config = new TrainConfig
        {
            BaseModel = TinyChat, SequenceLen = 16, MaxSteps = 1,
            PretrainingDataset = [new DatasetConfig { Path = docs, TextColumn = "content" }],
        };
        var expected = new List<int>();
        foreach (var line in File.ReadAllLines(docs))
        {
            expected.AddRange(tokenizer.Encode(JsonNode.Parse(line)!["content"]!.GetValue<string>(), addSpecialTokens: true));
            expected.Add(tokenizer.EosTokenId!.Value);
        }
        using var stream = new PretrainStream(config, tokenizer, TestPaths.RepoRoot);
        Assert.Equal(expected.Take(16), stream.Row(0));
        Assert.Equal(expected.Skip(32).Take(16), stream.Row(2));   // row 1 read past
        var cursor = PretrainStream.FromJson(PretrainStream.ToJson(stream.Cursor));
        var next = Enumerable.Range(3, 20).Select(i => stream.Row(i)).ToList();
        Assert.True(stream.Pass > 1);   // 5 documents run out: the stream starts over
        using var resumed = new PretrainStream(config, tokenizer, TestPaths.RepoRoot);
        resumed.Seek(cursor);
        Assert.Equal(next, Enumerable.Range(3, 20).Select(i => resumed.Row(i)).ToList());
        Assert.Throws<InvalidOperationException>(() => resumed.Row(0));
    }

    [Fact]
    public void Interrupted_and_resumed_training_equals_the_uninterrupted_run()
    {
        string docs = Documents(12);
        string config = Path.Combine(TestPaths.TempDir(), "pretrain.yaml");
        File.WriteAllText(config, $"""
            base_model: {TinyChat}
            pretraining_dataset:
              - path: {docs}
                type: pretrain
                text_column: content
            max_steps: 6
            sequence_len: 32
            micro_batch_size: 2
            gradient_accumulation_steps: 2
            learning_rate: 1.0e-3
            lr_scheduler: constant
            optimizer: adamw_torch
            logging_steps: 1
            save_steps: 3
            bf16: false
            """);
        string whole = TestPaths.TempDir(), parts = TestPaths.TempDir();
        var full = Run("train", config, "--set", $"output_dir={whole}");
        Assert.True(full.Code == 0, full.Err + full.Out);
        Assert.Contains("pretraining_dataset streamed", full.Out);
        var first = Run("train", config, "--set", $"output_dir={parts}", "--set", "max_steps=3");
        Assert.True(first.Code == 0, first.Err + first.Out);
        var rest = Run("train", config, "--set", $"output_dir={parts}", "--resume");
        Assert.True(rest.Code == 0, rest.Err + rest.Out);
        Assert.Contains("resumed from", rest.Out);

        static List<double> Losses(string dir) => File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!)
            .Where(j => j["loss"] is not null).Select(j => j["loss"]!.GetValue<double>()).ToList();
        var uninterrupted = Losses(whole);
        Assert.Equal(6, uninterrupted.Count);
        Assert.Equal(uninterrupted.Skip(3), Losses(parts).TakeLast(3));
        Assert.Equal(File.ReadAllBytes(Path.Combine(whole, "model.safetensors")), File.ReadAllBytes(Path.Combine(parts, "model.safetensors")));
    }

    [Fact]
    public void Pretraining_dataset_needs_max_steps_and_no_datasets_beside_it()
    {
        string config = ConfigTests.ConfigTestKit.Write("base_model: org/model\npretraining_dataset:\n  - path: c4\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nval_set_size: 0.1\n");
        var (exit, _, err) = ConfigTests.ConfigTestKit.RunCli("validate", config);
        Assert.Equal(2, exit);
        Assert.Contains("pretraining_dataset and datasets are both set; expected one (axolotl trains on pretraining_dataset alone) — put evaluation data in test_datasets", err);
        Assert.Contains("pretraining_dataset: a stream has no epoch length; set max_steps", err);
        Assert.Contains("val_set_size: 0.1 with pretraining_dataset; a stream has no held-out split — put evaluation data in test_datasets", err);
    }
}
