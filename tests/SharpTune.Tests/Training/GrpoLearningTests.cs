using System.Globalization;
using System.Text.RegularExpressions;
using static SharpTune.Tests.CliRunner;

namespace SharpTune.Tests.Training;

/// <summary>
/// The bundled learnable task (examples/grpo.yaml: word reversal, exact-match reward), shortened: GRPO from a stored
/// warm-up raises the greedy held-out mean reward over the 64 held-out prompts. The warm-up (tests/fixtures/grpo-warmup,
/// made by examples/grpo-warmup.yaml) reverses about 4 in 10 unseen words, so there is room to rise and every group
/// can carry a reward spread. A flipped advantage sign, a loss that does not reach the sampled tokens or a sampler that
/// ignores the policy leaves the reward where it was or lowers it. Measured: 0.438 → 0.672 after 80 steps; with the
/// advantage sign flipped, 0.438 → 0.000.
/// </summary>
public sealed partial class GrpoLearningTests
{
    private const int Steps = 80;

    [Fact]
    public void GrpoRaisesTheHeldOutRewardOfTheWarmedUpModel()
    {
        var output = TestPaths.TempDir();
        var (code, stdout, stderr) = Run(["train", Path.Combine(TestPaths.RepoRoot, "examples", "grpo.yaml"),
            "--set", $"base_model={Path.Combine(TestPaths.Fixtures, "grpo-warmup")}", "--set", $"output_dir={output}",
            "--set", $"max_steps={Steps}", "--set", $"eval_steps={Steps}", "--set", $"save_steps={Steps}"]);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("data: 736 train rows, 64 eval rows", stdout);
        double before = HeldOut(stdout, "before"), after = HeldOut(stdout, "after");
        Assert.True(before <= 0.6, $"the warm-up already scores {before:F3}: nothing left to show\n{stdout}");
        Assert.True(after >= before + 0.15, $"held-out mean reward {before:F3} → {after:F3} after {Steps} GRPO steps; expected a rise of at least 0.15\n{stdout}");
    }

    private static double HeldOut(string stdout, string when)
    {
        var match = HeldOutLine().Matches(stdout).SingleOrDefault(m => m.Groups[1].Value == when);
        Assert.True(match is not null, $"no \"held-out mean reward {when} training\" line in\n{stdout}");
        return double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"held-out mean reward (before|after) training \(greedy\): ([0-9.]+) over 64 prompts")]
    private static partial Regex HeldOutLine();
}
