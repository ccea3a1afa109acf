using System.Text;
using System.Text.Json.Nodes;
using Parquet.Serialization;
using SharpTune.Config;
using SharpTune.Data;

namespace SharpTune.Tests.Hub;

/// <summary>Hub repos as training inputs (base_model, datasets) and outputs (hub_model_id, sharptune push) on a loopback hub.</summary>
public sealed class HubTrainAndPushTests
{
    private static Dictionary<string, HubFile> ReverseWords()
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, "examples", "data", "reverse.jsonl"));
        return new()
        {
            ["README.md"] = new(Encoding.UTF8.GetBytes("# reverse words\n"), false),
            ["data/train-00000-of-00001.jsonl"] = new(Encoding.UTF8.GetBytes(string.Join("\n", lines[..200]) + "\n"), false),
            ["data/test-00000-of-00001.jsonl"] = new(Encoding.UTF8.GetBytes(string.Join("\n", lines[200..220]) + "\n"), false),
        };
    }

    [Fact]
    public async Task A_job_request_trains_from_hub_repos_and_pushes_the_adapter_with_a_model_card()
    {
        await using var hub = await LoopbackHub.StartAsync();
        hub.AddRepo("model", "acme/tiny-chat", HubDownloadTests.ModelFiles());
        hub.AddRepo("dataset", "acme/reverse-words", ReverseWords());
        using var env = new HubEnvironment(hub.Endpoint); // no HF_TOKEN: the token comes from the request's credentials
        string dir = TestPaths.TempDir();
        string output = Path.Combine(dir, "out");
        var args = new JsonObject
        {
            ["base_model"] = "acme/tiny-chat",
            ["datasets"] = new JsonArray(new JsonObject { ["path"] = "acme/reverse-words", ["type"] = "chat_template", ["split"] = "train[:64]" }),
            ["sequence_len"] = 64, ["micro_batch_size"] = 8, ["max_steps"] = 2, ["learning_rate"] = 1e-3, ["save_steps"] = 1,
            ["adapter"] = "lora", ["lora_r"] = 4, ["lora_target_modules"] = new JsonArray("q_proj", "v_proj"),
            ["output_dir"] = output, ["use_tensorboard"] = false,
            ["hub_model_id"] = "acme/tiny-chat-reverse", ["hub_strategy"] = "checkpoint", ["hub_private_repo"] = true,
        };
        string request = Path.Combine(dir, "job.json");
        File.WriteAllText(request, new JsonObject { ["input"] = new JsonObject { ["credentials"] = new JsonObject { ["hf_token"] = hub.Token }, ["args"] = args } }.ToJsonString());

        var (code, stdout, stderr) = CliRunner.Run("train", request);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("data: 64 train rows", stdout);
        Assert.Contains("downloading acme/tiny-chat@main: 5 file(s)", stdout); // not onnx/ nor extra/
        var pushed = hub.Files("model", "acme/tiny-chat-reverse")!;
        Assert.True(hub.IsPrivate("model", "acme/tiny-chat-reverse"));
        foreach (var name in new[] { "adapter_model.safetensors", "adapter_config.json", "README.md", "metrics.jsonl", "tokenizer.json" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(output, name)), pushed[name].Bytes);
        Assert.True(pushed["adapter_model.safetensors"].Lfs);
        Assert.False(pushed.ContainsKey("optimizer.safetensors"));
        Assert.Equal(File.ReadAllBytes(Path.Combine(output, "checkpoint-2", "optimizer.safetensors")), pushed["last-checkpoint/optimizer.safetensors"].Bytes);
        Assert.DoesNotContain(pushed.Keys, k => k.StartsWith("checkpoint-") || k.StartsWith("prepared/"));
        string card = Encoding.UTF8.GetString(pushed["README.md"].Bytes);
        Assert.StartsWith("---\nbase_model: acme/tiny-chat\nlibrary_name: peft\ntags:\n- sharptune\n- generated_from_trainer\n- lora\ndatasets:\n- acme/reverse-words\n---\n", card);
        Assert.Contains("| optimizer steps | 2 |", card);
        Assert.Contains("hub_model_id: \"acme/tiny-chat-reverse\"", card);
        Assert.DoesNotContain(hub.Token, card);
        // The token went only where it belongs: downloads and the pushes.
        Assert.Contains(hub.Requests, r => r.Path.StartsWith("/api/models/acme/tiny-chat-reverse/commit/") && r.Authorization == $"Bearer {hub.Token}");
    }

    [Fact]
    public async Task Push_uploads_large_files_through_lfs_and_the_rest_in_the_commit()
    {
        await using var hub = await LoopbackHub.StartAsync();
        using var env = new HubEnvironment(hub.Endpoint, token: hub.Token);
        string dir = TestPaths.TempDir();
        var weights = new byte[3 << 20];
        new Random(7).NextBytes(weights);
        File.WriteAllBytes(Path.Combine(dir, "adapter_model.safetensors"), weights);
        File.WriteAllText(Path.Combine(dir, "adapter_config.json"), "{\"r\": 4}");
        Directory.CreateDirectory(Path.Combine(dir, ".git"));
        File.WriteAllText(Path.Combine(dir, ".git", "HEAD"), "ref: refs/heads/main\n");
        Directory.CreateDirectory(Path.Combine(dir, "logs"));
        File.WriteAllText(Path.Combine(dir, "logs", "train.txt"), "step 1\n");

        var (code, stdout, stderr) = CliRunner.Run("push", dir, "acme/pushed");
        Assert.True(code == 0, stderr);
        var files = hub.Files("model", "acme/pushed")!;
        Assert.Equal(weights, files["adapter_model.safetensors"].Bytes);
        Assert.True(files["adapter_model.safetensors"].Lfs);
        Assert.Equal("{\"r\": 4}", Encoding.UTF8.GetString(files["adapter_config.json"].Bytes));
        Assert.False(files["adapter_config.json"].Lfs);
        Assert.Equal("step 1\n", Encoding.UTF8.GetString(files["logs/train.txt"].Bytes));
        Assert.DoesNotContain(".git/HEAD", files.Keys);
        Assert.Contains("(1 LFS upload(s), 0 already there)", stdout);
        Assert.Single(hub.Requests, r => r.Method == "PUT");

        // Same bytes again: the LFS batch API says the object is there, so nothing is re-sent.
        (code, stdout, stderr) = CliRunner.Run("push", dir, "acme/pushed", "--path-in-repo", "copy");
        Assert.True(code == 0, stderr);
        Assert.Contains("(0 LFS upload(s), 1 already there)", stdout);
        Assert.Equal(weights, hub.Files("model", "acme/pushed")!["copy/adapter_model.safetensors"].Bytes);
        Assert.Single(hub.Requests, r => r.Method == "PUT");

        env.Dispose();
        using var anonymous = new HubEnvironment(hub.Endpoint);
        (code, _, stderr) = CliRunner.Run("push", dir, "acme/pushed");
        Assert.Equal(2, code);
        Assert.StartsWith("error: push acme/pushed: needs a token with write access; set HF_TOKEN=hf_...", stderr);
    }

    public sealed class TextRow
    {
        public string Text { get; set; } = "";
    }

    private static byte[] Parquet(int rows)
    {
        using var stream = new MemoryStream();
        ParquetSerializer.SerializeAsync(Enumerable.Range(0, rows).Select(i => new TextRow { Text = $"row {i}" }), stream).GetAwaiter().GetResult();
        return stream.ToArray();
    }

    [Fact]
    public async Task A_script_dataset_is_read_from_the_parquet_conversion_with_a_split_slice()
    {
        await using var hub = await LoopbackHub.StartAsync();
        hub.AddRepo("dataset", "acme/scripted", new Dictionary<string, HubFile>
        {
            ["scripted.py"] = new(Encoding.UTF8.GetBytes("import datasets\n"), false),
            ["README.md"] = new(Encoding.UTF8.GetBytes("# scripted\n"), false),
        });
        string converted = hub.AddRepo("dataset", "acme/scripted", new Dictionary<string, HubFile>
        {
            ["default/train/0000.parquet"] = new(Parquet(20), true),
            ["default/test/0000.parquet"] = new(Parquet(5), true),
        }, branch: "refs/convert/parquet");
        using var env = new HubEnvironment(hub.Endpoint);
        var dataset = new DatasetConfig { Path = "acme/scripted", Type = "completion", Field = "Text", Split = "train[10%:60%]" };
        var parts = DatasetSources.ResolveParts(dataset, TestPaths.TempDir(), "datasets[0]");
        string repo = Path.Combine(env.Cache, "datasets--acme--scripted");
        Assert.Equal(Path.Combine(repo, "snapshots", converted, "default", "train", "0000.parquet"), Assert.Single(Assert.Single(parts).Files));
        Assert.Equal(converted, File.ReadAllText(Path.Combine(repo, "refs", "refs", "convert", "parquet")));
        var rows = DatasetSources.ReadParts(dataset, parts).Select(r => r.Value!["Text"]!.GetValue<string>()).ToList();
        Assert.Equal(Enumerable.Range(2, 10).Select(i => $"row {i}"), rows); // round(2.0)=2 … round(12.0)=12

        env.Offline = true; // the cache alone answers later runs
        hub.Requests.Clear();
        var offline = DatasetSources.ResolveParts(dataset with { Split = "test[-2:]" }, TestPaths.TempDir(), "datasets[0]");
        Assert.Equal(["row 3", "row 4"], DatasetSources.ReadParts(dataset, offline).Select(r => r.Value!["Text"]!.GetValue<string>()).ToArray());
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public void Split_slices_follow_the_datasets_library()
    {
        var s = Assert.Single(SplitSlices.Parse("train[10%:20%]", "d"));
        Assert.Equal((2L, 3L), s.Bounds(15)); // 1.5 → 2, 3.0 → 3 (round half to even)
        Assert.Equal((0L, 2L), Assert.Single(SplitSlices.Parse("train[:5%]", "d")).Bounds(50)); // 2.5 → 2
        Assert.Equal((0L, 2000L), Assert.Single(SplitSlices.Parse("train[:2000]", "d")).Bounds(5000));
        Assert.Equal((7L, 12L), Assert.Single(SplitSlices.Parse("train[-5:]", "d")).Bounds(12));
        Assert.Equal((0L, 3L), Assert.Single(SplitSlices.Parse("train[:-9]", "d")).Bounds(12));
        var both = SplitSlices.Parse("train[:50%]+test", "d");
        Assert.Equal(["train", "test"], both.Select(p => p.Split).ToArray());
        Assert.True(both[1].IsWhole);
        var mixed = Assert.Throws<InvalidInputException>(() => SplitSlices.Parse("train[10%:20]", "datasets[0]"));
        Assert.Equal("datasets[0].split: 'train[10%:20]' mixes percents and row numbers; use the same unit on both sides", mixed.Message);
        Assert.Throws<InvalidInputException>(() => SplitSlices.Parse("train[:150%]", "d"));
        Assert.Throws<InvalidInputException>(() => SplitSlices.Parse("train[1]", "d"));
    }
}
