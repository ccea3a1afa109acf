using SharpTune.Config;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>
/// GRPO's loss on a 2-prompt × 3-completion micro-batch (completion lengths 3, 2, 1 | 3, 3, 2 tokens) against values
/// worked out by hand from TRL's formulas, per loss_type, with and without clipping and KL; and its advantages.
/// </summary>
public sealed class GrpoLossTests
{
    private static readonly int[] Lengths = [3, 2, 1, 3, 3, 2];
    private static readonly double[] Adv = [1, -1, 0.5, 0.25, 2, -2];

    private static Tensor Mask() => tensor(Lengths.SelectMany(n => Enumerable.Range(0, 3).Select(t => t < n ? 1f : 0f)).ToArray(), [6, 3]);
    private static Tensor Grid(Func<int, int, double> value) =>
        tensor(Enumerable.Range(0, 18).Select(i => (float)(Lengths[i / 3] > i % 3 ? value(i / 3, i % 3) : 0)).ToArray(), [6, 3]);

    private static double Loss(GrpoLossType type, Tensor logps, Tensor? old = null, Tensor? reference = null, double beta = 0, double high = 0.2)
    {
        var settings = new GrpoSettings { LossType = type, Beta = beta, EpsilonLow = 0.2, EpsilonHigh = high, MaxCompletionLength = 3, NumIterations = old is null ? 1 : 2 };
        var output = GrpoLoss.Compute(logps, old, reference, tensor(Adv.Select(a => (float)a).ToArray()), Mask(), settings);
        return output.Loss.item<float>();
    }

    [Fact]
    public void OnPolicyWithoutKlIsMinusTheNormalisedAdvantages()
    {
        // num_iterations 1: ratio ≡ 1, per-token loss = −A_i. Σ A_i·len_i = 3 − 2 + 0.5 + 0.75 + 6 − 4 = 4.25 over 14 tokens.
        var logps = Grid((r, t) => -0.3 * (r + 1) - 0.1 * t);
        Assert.Equal(-(1 - 1 + 0.5 + 0.25 + 2 - 2) / 6, Loss(GrpoLossType.Grpo, logps), 1e-6);   // mean of per-sequence means = −0.125
        Assert.Equal(-4.25 / 14, Loss(GrpoLossType.Bnpo, logps), 1e-6);                          // −0.3035714
        Assert.Equal(-4.25 / (6 * 3), Loss(GrpoLossType.DrGrpo, logps), 1e-6);                   // B × max_completion_length
        Assert.Equal(-4.25 / 14, Loss(GrpoLossType.Dapo, logps), 1e-6);                          // one micro-batch: the step's tokens
    }

    // Ratios π/π_old per token (old = −1 everywhere), chosen to hit both clip edges: ε_low 0.2, ε_high 0.28.
    private static readonly double[,] Ratio =
    {
        { 1.5, 1.0, 0.5 }, { 1.5, 0.5, 0 }, { 1.1, 0, 0 }, { 0.7, 1.3, 1.0 }, { 1.2, 0.9, 1.4 }, { 0.6, 1.1, 0 },
    };

    /// <summary>−min(r·A, clip(r, 0.8, 1.28)·A), written out per case.</summary>
    private static double Surrogate(int row, int t)
    {
        double r = Ratio[row, t], a = Adv[row], clipped = Math.Clamp(r, 0.8, 1.28);
        return -Math.Min(r * a, clipped * a);
    }

    [Fact]
    public void ClippedSurrogateMatchesHandValues()
    {
        var old = Grid((_, _) => -1);
        var logps = Grid((r, t) => -1 + Math.Log(Ratio[r, t]));
        // Row 0 (A = 1): min(1.5, 1.28) = 1.28, 1, min(0.5, 0.8) = 0.5 → −(1.28 + 1 + 0.5) = −2.78
        Assert.Equal(-2.78, Surrogate(0, 0) + Surrogate(0, 1) + Surrogate(0, 2), 1e-12);
        // Row 1 (A = −1): max(1.5, 1.28)·−1 = −1.5 → loss 1.5; max(0.5, 0.8) → 0.8: 1.5 + 0.8 = 2.3
        Assert.Equal(2.3, Surrogate(1, 0) + Surrogate(1, 1), 1e-12);
        double[] rowSums = Enumerable.Range(0, 6).Select(r => Enumerable.Range(0, Lengths[r]).Sum(t => Surrogate(r, t))).ToArray();
        // Row sums: −2.78, 2.3, −0.5·1.1 = −0.55, −0.25·(0.7 + 1.28 + 1) = −0.745, −2·(1.2 + 0.9 + 1.28) = −6.76, 2·(0.8 + 1.1) = 3.8
        Assert.Equal([-2.78, 2.3, -0.55, -0.745, -6.76, 3.8], rowSums.Select(v => Math.Round(v, 10)).ToArray());
        double total = rowSums.Sum();   // −4.735
        Assert.Equal(Enumerable.Range(0, 6).Average(r => rowSums[r] / Lengths[r]), Loss(GrpoLossType.Grpo, logps, old, high: 0.28), 1e-6);
        Assert.Equal(total / 14, Loss(GrpoLossType.Bnpo, logps, old, high: 0.28), 1e-6);
        Assert.Equal(total / 18, Loss(GrpoLossType.DrGrpo, logps, old, high: 0.28), 1e-6);
        Assert.Equal(total / 14, Loss(GrpoLossType.Dapo, logps, old, high: 0.28), 1e-6);
    }

    [Fact]
    public void KlTermIsTheK3EstimatorWeightedByBeta()
    {
        // Reference − policy = d per token; k3 = e^d − d − 1. With ratio ≡ 1: per-token loss = −A + β·k3.
        double D(int r, int t) => 0.2 * (r - 2) + 0.15 * t;
        double K3(int r, int t) => Math.Exp(D(r, t)) - D(r, t) - 1;
        Assert.Equal(Math.Exp(-0.4) + 0.4 - 1, K3(0, 0), 1e-12);   // 0.0703200
        var logps = Grid((r, t) => -0.5 - 0.1 * r);
        var reference = Grid((r, t) => -0.5 - 0.1 * r + D(r, t));
        const double beta = 0.04;
        double PerToken(int r, int t) => -Adv[r] + beta * K3(r, t);
        var rowSums = Enumerable.Range(0, 6).Select(r => Enumerable.Range(0, Lengths[r]).Sum(t => PerToken(r, t))).ToArray();
        Assert.Equal(Enumerable.Range(0, 6).Average(r => rowSums[r] / Lengths[r]), Loss(GrpoLossType.Grpo, logps, reference: reference, beta: beta), 1e-6);
        Assert.Equal(rowSums.Sum() / 14, Loss(GrpoLossType.Bnpo, logps, reference: reference, beta: beta), 1e-6);
        Assert.Equal(rowSums.Sum() / 18, Loss(GrpoLossType.DrGrpo, logps, reference: reference, beta: beta), 1e-6);
        Assert.Equal(rowSums.Sum() / 14, Loss(GrpoLossType.Dapo, logps, reference: reference, beta: beta), 1e-6);

        var settings = new GrpoSettings { LossType = GrpoLossType.Bnpo, Beta = beta };
        var output = GrpoLoss.Compute(logps, null, reference, tensor(Adv.Select(a => (float)a).ToArray()), Mask(), settings);
        double meanKl = Enumerable.Range(0, 6).Sum(r => Enumerable.Range(0, Lengths[r]).Sum(t => K3(r, t))) / 14;
        Assert.Equal(meanKl, output.Metrics["kl"].item<float>(), 1e-6);
    }

    [Fact]
    public void ClippingAndKlTogetherAndTheClipFractions()
    {
        var old = Grid((_, _) => -1);
        var logps = Grid((r, t) => -1 + Math.Log(Ratio[r, t]));
        var reference = Grid((r, t) => -1.1);
        double PerToken(int r, int t)
        {
            double d = -1.1 - (-1 + Math.Log(Ratio[r, t]));
            return Surrogate(r, t) + 0.1 * (Math.Exp(d) - d - 1);
        }
        double total = Enumerable.Range(0, 6).Sum(r => Enumerable.Range(0, Lengths[r]).Sum(t => PerToken(r, t)));
        Assert.Equal(total / 14, Loss(GrpoLossType.Bnpo, logps, old, reference, beta: 0.1, high: 0.28), 1e-6);

        var settings = new GrpoSettings { LossType = GrpoLossType.Grpo, EpsilonLow = 0.2, EpsilonHigh = 0.28, NumIterations = 2 };
        var output = GrpoLoss.Compute(logps, old, null, tensor(Adv.Select(a => (float)a).ToArray()), Mask(), settings);
        // Low: r < 0.8 with A < 0 → row 1's 0.5 and row 5's 0.6 = 2 of 14. High: r > 1.28 with A > 0 → row 0's 1.5, row 3's 1.3, row 4's 1.4 = 3.
        Assert.Equal(2 / 14.0, output.Metrics["clip_ratio/low_mean"].item<float>(), 1e-6);
        Assert.Equal(3 / 14.0, output.Metrics["clip_ratio/high_mean"].item<float>(), 1e-6);
        // Region: any r outside [0.8, 1.28]: 1.5, 0.5 | 1.5, 0.5 | 0.7, 1.3 | 1.4 | 0.6 = 8 of 14.
        Assert.Equal(8 / 14.0, output.Metrics["clip_ratio/region_mean"].item<float>(), 1e-6);
    }

    [Fact]
    public void LossSumOverTheStepGivesTrlsAccumulatedLoss()
    {
        // Two micro-batches of 6 completions (the second the same batch with halved advantages): the trainer divides the
        // summed LossSum by 12 completions (grpo/bnpo/dr_grpo) or by all 28 completion tokens (dapo).
        var logps = Grid((r, t) => -0.3 * (r + 1) - 0.1 * t);
        foreach (var type in new[] { GrpoLossType.Grpo, GrpoLossType.Bnpo, GrpoLossType.DrGrpo, GrpoLossType.Dapo })
        {
            var settings = new GrpoSettings { LossType = type, MaxCompletionLength = 3 };
            var a = GrpoLoss.Compute(logps, null, null, tensor(Adv.Select(x => (float)x).ToArray()), Mask(), settings);
            var b = GrpoLoss.Compute(logps, null, null, tensor(Adv.Select(x => (float)(x / 2)).ToArray()), Mask(), settings);
            double units = type == GrpoLossType.Dapo ? 28 : 12;
            double trl = type == GrpoLossType.Dapo ? (a.LossSum.item<float>() + b.LossSum.item<float>()) / 28 : (a.Loss.item<float>() + b.Loss.item<float>()) / 2;
            Assert.Equal(trl, (a.LossSum.item<float>() + b.LossSum.item<float>()) / units, 1e-6);
            if (type == GrpoLossType.Dapo) Assert.Equal(-4.25 * 1.5 / 28, trl, 1e-6);
        }
    }

    [Fact]
    public void AdvantagesAreCentredPerGroupAndScaledByItsStd()
    {
        // Group 1: rewards 1, 0, 0.5 → mean 0.5, unbiased std √((0.25 + 0.25 + 0) / 2) = 0.5. Group 2: 1, 1, 1 → std 0.
        double[] rewards = [1, 0, 0.5, 1, 1, 1];
        var group = GrpoLoss.Advantages(rewards, 3, ScaleRewardsMode.Group);
        Assert.Equal(0.5, group.GroupMeans[0], 1e-12);
        Assert.Equal(0.5, group.GroupStds[0], 1e-12);
        Assert.Equal(0.0, group.GroupStds[1]);
        double[] expected = [0.5 / 0.5001, -0.5 / 0.5001, 0, 0, 0, 0];
        for (int i = 0; i < 6; i++) Assert.Equal(expected[i], group.Advantages[i], 1e-9);
        Assert.Equal(0.5, group.FractionZeroStd);   // the zero-std group carries no signal: all its advantages are 0

        // scale_rewards: batch — group means still subtracted, divided by the std of all six: mean 0.75, Σ(r − 0.75)² = 0.875, /5 → √0.175.
        var batch = GrpoLoss.Advantages(rewards, 3, ScaleRewardsMode.Batch);
        double batchStd = Math.Sqrt(0.175) + 1e-4;
        Assert.Equal([0.5 / batchStd, -0.5 / batchStd, 0, 0, 0, 0], batch.Advantages.Select(a => Math.Round(a, 9)).ToArray(),
            new ToleranceComparer(1e-8));
        var none = GrpoLoss.Advantages(rewards, 3, ScaleRewardsMode.None);
        Assert.Equal([0.5, -0.5, 0, 0, 0, 0], none.Advantages);
        Assert.Throws<ArgumentException>(() => GrpoLoss.Advantages([1, 2, 3, 4], 3, ScaleRewardsMode.Group));
    }

    private sealed class ToleranceComparer(double tolerance) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= tolerance;
        public int GetHashCode(double obj) => 0;
    }

    [Fact]
    public void GradientOfTheOnPolicyLossIsMinusAdvantageOverTokens()
    {
        // d/dlogp of −A·exp(logp − sg(logp)) = −A: with bnpo each unmasked token's gradient is −A_i / 14.
        var logps = Grid((r, t) => -0.3 * (r + 1) - 0.1 * t).requires_grad_(true);
        var settings = new GrpoSettings { LossType = GrpoLossType.Bnpo };
        var output = GrpoLoss.Compute(logps, null, null, tensor(Adv.Select(a => (float)a).ToArray()), Mask(), settings);
        output.Loss.backward();
        var grad = logps.grad!.data<float>().ToArray();
        for (int i = 0; i < 18; i++)
            Assert.Equal(Lengths[i / 3] > i % 3 ? -Adv[i / 3] / 14 : 0, grad[i], 1e-6);
    }
}
