using System.Text.Json.Nodes;
using static SharpTune.Tests.CliRunner;

namespace SharpTune.Tests.Training;

/// <summary>`sharptune train` with rl: grpo on the bundled tiny chat model: resume exactness and the bundled learnable task.</summary>
public sealed class GrpoTrainingTests
{
    private static string Example(string name) => Path.Combine(TestPaths.RepoRoot, "examples", name);

    /// <summary>
    /// The untrained model samples near-random characters, so "contains a letter a–m" (regex_match) gives groups a
    /// spread of rewards from the first step and the policy moves. num_iterations 2 with gradient accumulation 2: resuming at step 3 must
    /// reuse the kept rollouts (and old log-probs) of step 2, which only the checkpoint has.
    /// </summary>
    private static string[] Settings(string output, string adapter) =>
    [
        "--set", "base_model=models/tiny-chat", "--set", "rl=grpo", "--set", "datasets.0.path=data/reverse-prompts.jsonl", "--set", "datasets.0.type=prompt",
        "--set", "val_set_size=0", "--set", "eval_exact_match_samples=0", "--set", "trl.num_generations=4", "--set", "trl.max_completion_length=6",
        "--set", "trl.reward_funcs=regex_match,length_penalty", "--set", "reward_regex=.*[a-m].*", "--set", "reward_soft_punish_cache=4", "--set", "trl.beta=0.04", "--set", "trl.num_iterations=2",
        "--set", "trl.epsilon_high=0.28", "--set", "micro_batch_size=8", "--set", "gradient_accumulation_steps=2", "--set", "lr_scheduler=constant",
        "--set", "warmup_steps=null", "--set", "learning_rate=5e-3", "--set", "logging_steps=1", "--set", "save_steps=1", "--set", "evals_per_epoch=null",
        "--set", "num_epochs=1", "--set", "save_total_limit=null", "--set", $"output_dir={output}", .. adapter == "lora" ? new[] { "--set", "adapter=lora", "--set", "lora_r=4", "--set", "lora_target_linear=true" } : [],
    ];

    [Theory]
    [InlineData("lora")]
    [InlineData("full")]
    public void InterruptedAndResumedRunEndsWithTheSameWeights(string adapter)
    {
        string straight = TestPaths.TempDir(), interrupted = TestPaths.TempDir();
        var full = Run(["train", Example("quickstart.yaml"), .. Settings(straight, adapter), "--set", "max_steps=5"]);
        Assert.True(full.Code == 0, full.Err + full.Out);
        var first = Run(["train", Example("quickstart.yaml"), .. Settings(interrupted, adapter), "--set", "max_steps=3"]);
        Assert.True(first.Code == 0, first.Err + first.Out);
        Assert.True(File.Exists(Path.Combine(interrupted, "checkpoint-3", "grpo_rollouts.safetensors")));
        var resumed = Run(["train", Example("quickstart.yaml"), .. Settings(interrupted, adapter), "--set", "max_steps=5", "--resume"]);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.Contains("checkpoint-3 at step 3", resumed.Out);

        string weights = adapter == "lora" ? "adapter_model.safetensors" : "model.safetensors";
        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, weights)), File.ReadAllBytes(Path.Combine(interrupted, weights)));
        // The policy moved: the run's weights differ from its first checkpoint's.
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(straight, "checkpoint-1", weights)), File.ReadAllBytes(Path.Combine(straight, weights)));
        var a = Metrics(straight);
        var b = Metrics(interrupted);
        Assert.Equal(a.Select(m => m["step"]!.GetValue<int>()), b.Select(m => m["step"]!.GetValue<int>()));
        foreach (var key in new[] { "loss", "reward", "kl", "clip_ratio/region_mean", "completions/mean_length" })
            Assert.Equal(a.Select(m => m[key]!.GetValue<double>()), b.Select(m => m[key]!.GetValue<double>()));
        Assert.True(a.Any(m => m["reward_std"]!.GetValue<double>() > 0), "groups had a reward spread");
        Assert.True(a.Skip(1).Any(m => m["kl"]!.GetValue<double>() > 0), "the policy left the reference");
    }

    private static List<JsonNode> Metrics(string output) =>
        File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).Where(j => j["loss"] is not null).ToList();
}
