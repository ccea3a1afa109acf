using SharpTune.Config;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>GRPO's hyper-parameters as the loss and the rollouts use them (TRL GRPOConfig names, resolved).</summary>
public sealed record GrpoSettings
{
    public int NumGenerations { get; init; } = 8;
    public int MaxCompletionLength { get; init; } = 256;
    public int? MaxPromptLength { get; init; }
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    public int TopK { get; init; }
    public double? MinP { get; init; }
    public double RepetitionPenalty { get; init; } = 1.0;
    public double Beta { get; init; }
    public double EpsilonLow { get; init; } = 0.2;
    public double EpsilonHigh { get; init; } = 0.2;
    public GrpoLossType LossType { get; init; } = GrpoLossType.Dapo;
    public ScaleRewardsMode ScaleRewards { get; init; } = ScaleRewardsMode.Group;
    public int NumIterations { get; init; } = 1;
    public bool MaskTruncatedCompletions { get; init; }

    public static GrpoSettings From(TrlConfig t) => new()
    {
        NumGenerations = t.NumGenerations, MaxCompletionLength = t.MaxCompletionLength, MaxPromptLength = t.MaxPromptLength,
        Temperature = t.Temperature, TopP = t.TopP, TopK = t.TopK, MinP = t.MinP, RepetitionPenalty = t.RepetitionPenalty,
        Beta = t.Beta, EpsilonLow = t.Epsilon, EpsilonHigh = t.EpsilonHigh ?? t.Epsilon, LossType = t.LossType,
        ScaleRewards = t.ScaleRewards, NumIterations = t.NumIterations, MaskTruncatedCompletions = t.MaskTruncatedCompletions,
    };
}

/// <summary>Group-relative advantages of one generation batch and how many of its groups carry no signal.</summary>
public sealed record GroupAdvantages(double[] Advantages, double[] GroupMeans, double[] GroupStds, double FractionZeroStd);

/// <summary>One micro-batch's GRPO loss as TRL computes it, the sum the trainer normalises, and the loss metrics.</summary>
public sealed record GrpoLossOutput(Tensor Loss, Tensor LossSum, IReadOnlyDictionary<string, Tensor> Metrics);

/// <summary>
/// The GRPO objective's arithmetic (TRL GRPOTrainer): advantages = reward − group mean (÷ std + 1e-4), the clipped
/// surrogate on per-token ratios π/π_old, the k3 KL estimate to the reference, and the loss_type's token normalisation.
/// </summary>
public static class GrpoLoss
{
    /// <summary>
    /// Rows come in groups of <paramref name="groupSize"/> consecutive completions of one prompt. The std is the
    /// unbiased one (torch.std); with scale_rewards batch it is taken over all rows, the mean still per group.
    /// </summary>
    public static GroupAdvantages Advantages(IReadOnlyList<double> rewards, int groupSize, ScaleRewardsMode scale)
    {
        if (rewards.Count % groupSize != 0) throw new ArgumentException($"{rewards.Count} rewards are not whole groups of {groupSize}");
        int groups = rewards.Count / groupSize;
        var means = new double[groups];
        var stds = new double[groups];
        for (int g = 0; g < groups; g++)
        {
            var group = Enumerable.Range(g * groupSize, groupSize).Select(i => rewards[i]).ToArray();
            means[g] = group.Average();
            stds[g] = UnbiasedStd(group);
        }
        double batchStd = UnbiasedStd(rewards.ToArray());
        var advantages = new double[rewards.Count];
        for (int i = 0; i < rewards.Count; i++)
        {
            double centred = rewards[i] - means[i / groupSize];
            advantages[i] = scale switch
            {
                ScaleRewardsMode.Group => centred / (stds[i / groupSize] + 1e-4),
                ScaleRewardsMode.Batch => centred / (batchStd + 1e-4),
                _ => centred,
            };
        }
        // TRL: torch.isclose(std, 0) with its default tolerances.
        double zeroStd = stds.Count(s => Math.Abs(s) <= 1e-8) / (double)Math.Max(groups, 1);
        return new GroupAdvantages(advantages, means, stds, zeroStd);
    }

    /// <summary>
    /// Loss over a micro-batch of B completions. Per-token tensors are (B, T) and zero where <paramref name="mask"/> is 0.
    /// <paramref name="oldLogProbs"/> null means num_iterations = 1: the ratio's denominator is the detached policy itself.
    /// LossSum × (B / step rows) — or ÷ the step's completion tokens for dapo — summed over the step gives TRL's loss.
    /// </summary>
    public static GrpoLossOutput Compute(Tensor logProbs, Tensor? oldLogProbs, Tensor? refLogProbs, Tensor advantages, Tensor mask,
        GrpoSettings settings)
    {
        using var scope = NewDisposeScope();
        long rows = logProbs.shape[0];
        var old = oldLogProbs ?? logProbs.detach();
        var ratio = (logProbs - old).exp();
        var clipped = ratio.clamp(1 - settings.EpsilonLow, 1 + settings.EpsilonHigh);
        var a = advantages.unsqueeze(1);
        var perToken = -minimum(ratio * a, clipped * a);
        Tensor? kl = null;
        if (settings.Beta != 0)
        {
            if (refLogProbs is null) throw new InvalidOperationException("beta ≠ 0 needs reference log-probs");
            var delta = refLogProbs - logProbs;
            kl = delta.exp() - delta - 1;
            perToken = perToken + kl * settings.Beta;
        }
        var masked = perToken * mask;
        var tokens = mask.sum();
        var safeTokens = tokens.clamp_min(1);
        Tensor loss, lossSum;
        switch (settings.LossType)
        {
            case GrpoLossType.Grpo:
                var perSequence = masked.sum(1) / mask.sum(1).clamp_min(1);
                loss = perSequence.mean();
                lossSum = perSequence.sum();
                break;
            case GrpoLossType.Bnpo:
                loss = masked.sum() / safeTokens;
                lossSum = loss * rows;
                break;
            case GrpoLossType.DrGrpo:
                loss = masked.sum() / (rows * settings.MaxCompletionLength);
                lossSum = loss * rows;
                break;
            case GrpoLossType.Dapo:
                // Normalised by the completion tokens of the whole accumulated step: the trainer divides by them.
                lossSum = masked.sum();
                loss = lossSum / safeTokens;
                break;
            default:
                throw new InvalidInputException($"trl.loss_type: {settings.LossType} is not supported; allowed: grpo, bnpo, dr_grpo, dapo");
        }

        var ratioDetached = ratio.detach();
        var low = ratioDetached.lt(1 - settings.EpsilonLow).logical_and(a.lt(0)).to(ScalarType.Float32);
        var high = ratioDetached.gt(1 + settings.EpsilonHigh).logical_and(a.gt(0)).to(ScalarType.Float32);
        var region = ratioDetached.lt(1 - settings.EpsilonLow).logical_or(ratioDetached.gt(1 + settings.EpsilonHigh)).to(ScalarType.Float32);
        Tensor Fraction(Tensor flags) => ((flags * mask).sum() / safeTokens).MoveToOuterDisposeScope();
        var metrics = new Dictionary<string, Tensor>
        {
            ["clip_ratio/low_mean"] = Fraction(low),
            ["clip_ratio/high_mean"] = Fraction(high),
            ["clip_ratio/region_mean"] = Fraction(region),
        };
        if (kl is not null) metrics["kl"] = Fraction(kl.detach());
        return new GrpoLossOutput(loss.MoveToOuterDisposeScope(), lossSum.MoveToOuterDisposeScope(), metrics);
    }

    private static double UnbiasedStd(double[] values)
    {
        if (values.Length < 2) return double.NaN;
        double mean = values.Average();
        return Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Length - 1));
    }
}
