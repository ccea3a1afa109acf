using SharpTune.Config;
using static SharpTune.Tests.ConfigTests.ConfigTestKit;

namespace SharpTune.Tests.ConfigTests;

/// <summary>rl: grpo and the nested trl: mapping: TRL's keys and defaults, unsupported keys refused by name, --set trl.KEY.</summary>
public sealed class GrpoConfigTests
{
    private const string Grpo = """
        base_model: org/model
        rl: grpo
        datasets:
          - path: prompts.jsonl
            type: prompt
        micro_batch_size: 8

        """;

    private static TrainConfig Load(string text, params string[] overrides) => ConfigLoader.Load(Write(text), overrides, _ => { });

    private static string Error(string text, params string[] overrides) =>
        Assert.ThrowsAny<InvalidInputException>(() => Load(text, overrides)).Message;

    [Fact]
    public void TrlMappingBindsWithTrlDefaults()
    {
        var c = Load(Grpo + """
            trl:
              num_generations: 4
              beta: 0
              epsilon_high: 0.28
              loss_type: dr_grpo
              scale_rewards: false
              num_iterations: 2
              reward_funcs: [exact_match, length_penalty]
              reward_weights: [1.0, 0.5]
              use_vllm: false
            """);
        Assert.Equal(RlType.Grpo, c.Rl);
        Assert.Equal(4, c.Trl.NumGenerations);
        Assert.Equal(0.0, c.Trl.Beta);
        Assert.Equal(0.28, c.Trl.EpsilonHigh);
        Assert.Equal(GrpoLossType.DrGrpo, c.Trl.LossType);
        Assert.Equal(ScaleRewardsMode.None, c.Trl.ScaleRewards);
        Assert.Equal([1.0, 0.5], c.Trl.RewardWeights);
        Assert.Equal(256, c.Trl.MaxCompletionLength);   // TRL's default
        Assert.Equal(0.2, c.Trl.Epsilon);
        Assert.Equal(1.0, c.Trl.Temperature);

        var set = Load(Grpo + "trl:\n  reward_funcs: [exact_match]\n  num_generations: 4\n", "trl.beta=0.04", "trl.scale_rewards=true", "trl.reward_weights=2");
        Assert.Equal(0.04, set.Trl.Beta);
        Assert.Equal(ScaleRewardsMode.Group, set.Trl.ScaleRewards);
        Assert.Equal([2.0], set.Trl.RewardWeights);
        // The YAML writer (checkpoint config.yaml) writes the mapping back and it loads to the same values.
        var again = ConfigLoader.FromText(ConfigWriter.ToYaml(set), "written", TestPaths.TempDir(), false, [], _ => { });
        Assert.Equal(set.Trl, again.Trl with { RewardFuncs = set.Trl.RewardFuncs, RewardWeights = set.Trl.RewardWeights });
        Assert.Equal(set.Trl.RewardFuncs, again.Trl.RewardFuncs);
    }

    [Fact]
    public void UnsupportedOrInconsistentSettingsAreRefusedByName()
    {
        const string rewards = "trl:\n  num_generations: 4\n  reward_funcs: [exact_match]\n";
        Assert.Matches(@"trl\.vllm_mode is not supported by this build; supported: num_generations, ", Error(Grpo + rewards + "  vllm_mode: server\n"));
        Assert.Contains("trl.num_generation is not supported by this build (did you mean 'trl.num_generations'?)", Error(Grpo + "trl:\n  num_generation: 4\n"));
        Assert.Contains("--set trl.bogus=1: unknown key 'trl.bogus'", Error(Grpo + rewards, "trl.bogus=1"));
        Assert.Contains("trl.use_vllm: true is not supported", Error(Grpo + rewards + "  use_vllm: true\n"));
        Assert.Contains("trl.loss_type: dapoo is invalid; expected one of grpo, bnpo, dr_grpo, dapo", Error(Grpo + rewards + "  loss_type: dapoo\n"));
        Assert.Contains("micro_batch_size: 8 is not a multiple of trl.num_generations: 3", Error(Grpo + "trl:\n  num_generations: 3\n  reward_funcs: [exact_match]\n"));
        Assert.Contains("rl: grpo needs a reward", Error(Grpo + "trl:\n  num_generations: 4\n"));
        Assert.Contains("trl.reward_funcs: 'rwd.format_reward' is not a built-in reward", Error(Grpo + "trl:\n  num_generations: 4\n  reward_funcs: [rwd.format_reward]\n"));
        Assert.Contains("trl.reward_weights: 1 weight(s) for 2 reward function(s) (exact_match, command)",
            Error(Grpo + rewards + "  reward_weights: [1]\nreward_command: ./score.sh\n"));
        Assert.Contains("regex_match needs reward_regex", Error(Grpo + "trl:\n  num_generations: 4\n  reward_funcs: [regex_match]\n"));
        Assert.Contains("datasets.0.type: alpaca is not a prompt format but rl is grpo", Error(Grpo.Replace("type: prompt", "type: alpaca") + rewards));
        Assert.Contains("datasets.0.type: prompt holds prompts for online RL; expected rl: grpo", Error(Grpo.Replace("rl: grpo\n", "") + rewards));
        Assert.Contains("trl.beta: -1 is invalid; expected a number ≥ 0", Error(Grpo + rewards + "  beta: -1\n"));
    }
}
