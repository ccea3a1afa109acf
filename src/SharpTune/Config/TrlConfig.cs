namespace SharpTune.Config;

/// <summary>The `trl:` mapping: GRPO settings with TRL GRPOConfig's names and defaults (keys declared as in TrainConfig).</summary>
public sealed record TrlConfig
{
    [Key("Completions sampled per prompt (the group size G); micro_batch_size must be a multiple of it.", Range = "≥ 2")]
    public int NumGenerations { get; init; } = 8;
    [Key("Most new tokens per completion.", Range = "≥ 1")]
    public int MaxCompletionLength { get; init; } = 256;
    [Key("Prompts longer than this keep their last this many tokens.", Range = "≥ 1", Default = "null (whole prompt)")]
    public int? MaxPromptLength { get; init; }
    [Key("Sampling temperature; the policy's log-probs are taken at the same temperature, as TRL does.", Range = "> 0")]
    public double Temperature { get; init; } = 1.0;
    [Key("Nucleus sampling threshold.", Range = "(0, 1]")]
    public double TopP { get; init; } = 1.0;
    [Key("Keep the k most likely tokens when sampling; 0 keeps all.", Range = "≥ 0")]
    public int TopK { get; init; }
    [Key("Minimum token probability relative to the most likely one.", Range = "[0, 1]", Default = "null (off)")]
    public double? MinP { get; init; }
    [Key("Penalty on tokens already in the prompt or completion while sampling.", Range = "> 0")]
    public double RepetitionPenalty { get; init; } = 1.0;
    [Key("Weight of the k3 KL estimate to the reference model; 0 skips the reference pass.", Range = "≥ 0")]
    public double Beta { get; init; }
    [Key("Lower clip range: ratios below 1 − epsilon stop counting for negative advantages.", Range = "> 0")]
    public double Epsilon { get; init; } = 0.2;
    [Key("Upper clip range (DAPO's clip-higher): ratios above 1 + epsilon_high stop counting for positive advantages.", Range = "> 0", Default = "epsilon")]
    public double? EpsilonHigh { get; init; }
    [Key("Token normalisation: grpo (mean per completion, then over completions), bnpo (over the micro-batch's completion tokens), dr_grpo (over completions × max_completion_length), dapo (over the completion tokens of the whole optimizer step).")]
    public GrpoLossType LossType { get; init; } = GrpoLossType.Dapo;
    [Key("Divide advantages by the reward std of the group (true = group), of the micro-batch (batch), or not (none = false); std + 1e-4.")]
    public ScaleRewardsMode ScaleRewards { get; init; } = ScaleRewardsMode.Group;
    [Key("Optimizer steps per generation (μ): completions and their old-policy log-probs are reused this many times.", Range = "≥ 1")]
    public int NumIterations { get; init; } = 1;
    [Key("Built-in reward functions: exact_match, regex_match, tag_format, think_format, json_valid, length_penalty (docs/rl.md). reward_command adds one more.")]
    public IReadOnlyList<string> RewardFuncs { get; init; } = [];
    [Key("Weight of each reward function, in order (with reward_command last).", Default = "1 each")]
    public IReadOnlyList<double> RewardWeights { get; init; } = [];
    [Key("Leave completions that hit max_completion_length without EOS out of the loss.")]
    public bool MaskTruncatedCompletions { get; init; }
    [Key("Print sampled completions with their rewards at each logging step (they are logged at eval steps regardless).")]
    public bool LogCompletions { get; init; }
    [Key("How many completions log_completions and the eval-step log print.", Range = "≥ 1", Default = "3")]
    public int? NumCompletionsToPrint { get; init; }
    [Key("Accepted as false only: completions are sampled by SharpTune's own batched generator.")]
    public bool UseVllm { get; init; }
}
