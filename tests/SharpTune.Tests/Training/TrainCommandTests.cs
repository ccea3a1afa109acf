using static SharpTune.Tests.CliRunner;
using System.Text.Json.Nodes;
using SharpTune.SafeTensors;

namespace SharpTune.Tests.Training;

/// <summary>`sharptune train` end to end on the bundled tiny chat model (few steps; figures asserted).</summary>
public sealed class TrainCommandTests
{
    private static string Example(string name) => Path.Combine(TestPaths.RepoRoot, "examples", name);


    [Fact]
    public void LoraRunWritesPeftAdapterMergedModelCheckpointsAndMetrics()
    {
        var output = TestPaths.TempDir();
        var (code, stdout, stderr) = Run("train", Example("lora.yaml"), "--set", $"output_dir={output}", "--set", "max_steps=4",
            "--set", "logging_steps=1", "--set", "saves_per_epoch=null", "--set", "save_steps=2", "--set", "save_total_limit=1");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("done: 4 steps", stdout);
        var metrics = File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).Where(j => j["loss"] is not null).ToList();
        Assert.Equal(new[] { 1, 2, 3, 4 }, metrics.Select(m => m["step"]!.GetValue<int>()));
        Assert.All(metrics, m => Assert.True(m["loss"]!.GetValue<double>() is > 0 and < 10));
        using var adapter = SafeTensorsCheckpoint.Open(Path.Combine(output, "adapter_model.safetensors"));
        Assert.Contains("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight", adapter.Names);
        Assert.True(File.Exists(Path.Combine(output, "merged", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(output, "merged", "tokenizer.json")));
        // save_total_limit 1: only the newest checkpoint stays.
        Assert.Equal(new[] { "checkpoint-4" }, Directory.GetDirectories(output, "checkpoint-*").Select(Path.GetFileName).ToArray());
    }

    [Fact]
    public void ResumeFlagContinuesFromTheNewestCheckpoint()
    {
        var output = TestPaths.TempDir();
        string[] common = ["--set", $"output_dir={output}", "--set", "logging_steps=1", "--set", "eval_exact_match_samples=0", "--set", "save_steps=2", "--set", "evals_per_epoch=null"];
        var first = Run(["train", Example("quickstart.yaml"), .. common, "--set", "max_steps=2"]);
        Assert.True(first.Code == 0, first.Err + first.Out);
        var resumed = Run(["train", Example("quickstart.yaml"), .. common, "--set", "max_steps=4", "--resume"]);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.Contains("resumed from", resumed.Out);
        Assert.Contains("checkpoint-2 at step 2", resumed.Out);
        Assert.Contains("done: 4 steps", resumed.Out);
    }

    [Fact]
    public void LoraTargetsThatMatchNothingAreABadConfig()
    {
        var (code, _, stderr) = Run("train", Example("lora.yaml"), "--set", $"output_dir={TestPaths.TempDir()}", "--set", "lora_target_linear=false",
            "--set", "lora_target_modules=query_key_value", "--set", "max_steps=1");
        Assert.Equal(2, code);
        Assert.Contains("lora_target_modules: no linear layer matches [query_key_value]; this model has: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj", stderr);
    }

    [Fact]
    public void LossWatchdogStopsWithACheckpointAndAMessage()
    {
        var output = TestPaths.TempDir();
        var (code, _, stderr) = Run("train", Example("quickstart.yaml"), "--set", $"output_dir={output}", "--set", "max_steps=10", "--set", "logging_steps=1",
            "--set", "eval_exact_match_samples=0", "--set", "loss_watchdog_threshold=0.5", "--set", "loss_watchdog_patience=2");
        Assert.Equal(RunStoppedException.LossWatchdogExitCode, code);
        Assert.Matches(@"(?m)^stopped: loss watchdog: loss \d+\.\d{4} stayed above loss_watchdog_threshold 0\.5 for 2 logging steps; stopped with a checkpoint at step 2$", stderr);
        Assert.DoesNotContain("Exception", stderr);
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-2")));
    }
}

public sealed class QLoraTrainTests
{
    [Fact]
    public void QloraRunTrainsAdaptersOnAFourBitBaseAndMergesIntoTheOriginal()
    {
        var output = TestPaths.TempDir();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = SharpTune.Cli.Program.Run(["train", Path.Combine(TestPaths.RepoRoot, "examples", "qlora.yaml"), "--set", $"output_dir={output}",
            "--set", "max_steps=3", "--set", "logging_steps=1"], stdout, stderr);
        Assert.True(code == 0, stderr.ToString() + stdout);
        Assert.Contains("training 1", stdout.ToString());
        using var adapter = SafeTensorsCheckpoint.Open(Path.Combine(output, "adapter_model.safetensors"));
        Assert.Contains("base_model.model.model.layers.3.self_attn.q_proj.lora_B.weight", adapter.Names);
        using var merged = SafeTensorsCheckpoint.Open(Path.Combine(output, "merged"));
        Assert.Contains("model.layers.3.self_attn.q_proj.weight", merged.Names);
    }
}
