using System.Text.Json.Nodes;
using static SharpTune.Tests.CliRunner;

namespace SharpTune.Tests.Training;

/// <summary>
/// DPO, ORPO and KTO with LoRA on the bundled rule-based preference set (examples/data/case-preference.jsonl:
/// "Shout: w" prefers "W!", "Whisper: w" prefers "w."; the prompt shows w in either case at random) learn the rule
/// and carry it to the 120 held-out pairs of unseen words.
/// </summary>
public sealed class PreferenceLearningTests
{
    private static string Example(string name) => Path.Combine(TestPaths.RepoRoot, "examples", name);

    /// <summary>Trains an example config for `steps` steps with one evaluation at the end; returns that eval record.</summary>
    private static JsonNode TrainAndEvaluate(string config, int steps, params string[] settings)
    {
        var output = TestPaths.TempDir();
        string[] args = ["train", Example(config), "--set", $"output_dir={output}", "--set", $"max_steps={steps}", "--set", $"eval_steps={steps}",
            .. settings.SelectMany(s => new[] { "--set", s })];
        var (code, stdout, stderr) = Run(args);
        Assert.True(code == 0, stderr + stdout);
        // 600 rows, val_set_size 0.2: 120 held-out pairs (KTO unpairs each row into a desirable and an undesirable example).
        Assert.Contains(config == "kto.yaml" ? "data: 960 train rows, 240 eval rows" : "data: 480 train rows, 120 eval rows", stdout);
        return File.ReadAllLines(Path.Combine(output, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!).Last(j => j["eval_loss"] is not null);
    }

    private static double Metric(JsonNode record, string name) => record[name]!.GetValue<double>();

    [Fact]
    public void DpoLoraReachesHeldOutRewardAccuracyAboveNinetyPercent()
    {
        var eval = TrainAndEvaluate("dpo.yaml", 20);
        // Policy = reference at step 0 gives equal rewards (accuracy 0); after 20 steps nearly every unseen pair is ordered right.
        Assert.True(Metric(eval, "eval_rewards/accuracies") >= 0.9, eval.ToJsonString());
        Assert.True(Metric(eval, "eval_rewards/margins") > 0.3, eval.ToJsonString());
        Assert.True(Metric(eval, "eval_loss") < 0.6, eval.ToJsonString());   // ln 2 = 0.693 at step 0
        Assert.Null(eval["eval_perplexity"]);
    }

    [Fact]
    public void OrpoLoraReachesHeldOutRewardAccuracyAboveNinetyPercentFromChanceLevel()
    {
        var before = TrainAndEvaluate("orpo.yaml", 1, "learning_rate=1e-12");
        var after = TrainAndEvaluate("orpo.yaml", 20);
        Assert.True(Metric(before, "eval_rewards/accuracies") < 0.7, before.ToJsonString());
        Assert.True(Metric(after, "eval_rewards/accuracies") >= 0.9, after.ToJsonString());
        Assert.True(Metric(after, "eval_logps/chosen") > Metric(before, "eval_logps/chosen") + 0.5, after.ToJsonString());
    }

    [Fact]
    public void KtoLoraSeparatesHeldOutDesirableFromUndesirableCompletions()
    {
        var eval = TrainAndEvaluate("kto.yaml", 20);
        // Rewards start at 0 for both sides; the held-out desirable completions gain, the undesirable lose.
        Assert.True(Metric(eval, "eval_rewards/chosen") > 0.1, eval.ToJsonString());
        Assert.True(Metric(eval, "eval_rewards/rejected") < -0.1, eval.ToJsonString());
        Assert.True(Metric(eval, "eval_kl") >= 0, eval.ToJsonString());
        Assert.True(Metric(eval, "eval_loss") < 0.47, eval.ToJsonString());   // 0.5 per example at step 0
    }
}
