using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;
using SharpTune.Peft;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>Preference losses against hand-computed values (formulas in docs/preference.md) and the DPO step-0 identity.</summary>
public sealed class PreferenceTests
{
    private static Tensor T(params float[] v) => tensor(v);

    [Fact]
    public void DpoSigmoidMatchesHandComputedValues()
    {
        // logits = (−5 − −7) − (−6 − −6.5) = 2 − 0.5 = 1.5; loss = −log σ(0.1·1.5) = log(1 + e^−0.15)
        var (losses, chosen, rejected) = PreferenceLosses.Dpo(T(-5f), T(-7f), T(-6f), T(-6.5f), 0.1, DpoLossType.Sigmoid, 0);
        Assert.Equal(Math.Log(1 + Math.Exp(-0.15)), losses.item<float>(), 1e-6);
        Assert.Equal(0.1, chosen.item<float>(), 1e-6);     // β(−5 − −6)
        Assert.Equal(-0.05, rejected.item<float>(), 1e-6); // β(−7 − −6.5)
    }

    [Fact]
    public void DpoLabelSmoothingIpoAndHingeMatchHandComputedValues()
    {
        var smoothed = PreferenceLosses.Dpo(T(-5f), T(-7f), T(-6f), T(-6.5f), 0.1, DpoLossType.Sigmoid, 0.2).Losses.item<float>();
        Assert.Equal(0.8 * Math.Log(1 + Math.Exp(-0.15)) + 0.2 * Math.Log(1 + Math.Exp(0.15)), smoothed, 1e-6);
        var ipo = PreferenceLosses.Dpo(T(-5f), T(-7f), T(-6f), T(-6.5f), 0.1, DpoLossType.Ipo, 0).Losses.item<float>();
        Assert.Equal(Math.Pow(1.5 - 1 / 0.2, 2), ipo, 1e-5);   // (logits − 1/(2β))²
        var hinge = PreferenceLosses.Dpo(T(-5f), T(-7f), T(-6f), T(-6.5f), 0.1, DpoLossType.Hinge, 0).Losses.item<float>();
        Assert.Equal(1 - 0.15, hinge, 1e-6);                    // relu(1 − β·logits)
    }

    [Fact]
    public void OrpoOddsRatioAndSimpoMatchHandComputedValues()
    {
        double c = -0.5, r = -1.5;
        double logOdds = (c - r) - (Math.Log(1 - Math.Exp(c)) - Math.Log(1 - Math.Exp(r)));
        var orpo = PreferenceLosses.OddsRatio(T((float)c), T((float)r), 0.1).Losses.item<float>();
        Assert.Equal(0.1 * Math.Log(1 + Math.Exp(-logOdds)), orpo, 1e-6);
        var simpo = PreferenceLosses.Simpo(T((float)c), T((float)r), 2.0, 0.5, 0).Losses.item<float>();
        Assert.Equal(Math.Log(1 + Math.Exp(-(2.0 * (c - r) - 0.5))), simpo, 1e-6);   // −log σ(β(c − r) − γ)
    }

    [Fact]
    public void DpoAtStepZeroWithLoraIsLn2AndRewardsAreZero()
    {
        using var model = ModelLoader.Load(Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama"));
        Lora.Inject(model, new LoraSettings { R = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] }, seed: 1);
        var pairs = new[]
        {
            new PreferenceExample([5, 6, 7], [8, 9, 2], [10, 11, 12, 2]),
            new PreferenceExample([20, 21], [30, 2], [40, 41, 2]),
        };
        var source = new PreferenceBatchSource(pairs, 2, 0, 1, shuffle: false);
        using var batch = source.Batch(0, 0);
        var output = new PreferenceObjective(new PreferenceSettings(RlType.Dpo, 0.1)).Compute(model, batch);
        Assert.Equal(2 * Math.Log(2), output.LossSum.item<float>(), 1e-6);
        Assert.Equal(0, output.Metrics["rewards/chosen"].item<float>());
        Assert.Equal(0, output.Metrics["rewards/margins"].item<float>());
        Assert.True(output.Metrics["logps/chosen"].item<float>() < 0);
    }

    [Fact]
    public void PreferenceBatchesLabelOnlyCompletionsAndPutChosenRowsFirst()
    {
        var pairs = new[] { new PreferenceExample([5, 6], [7, 2], [8, 9, 2]) };
        using var batch = new PreferenceBatchSource(pairs, 1, 0, 1, shuffle: false).Batch(0, 0);
        Assert.Equal(new long[] { 5, 6, 7, 2, 0, 5, 6, 8, 9, 2 }, batch.Inputs.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { -100, -100, 7, 2, -100, -100, -100, 8, 9, 2 }, batch.Labels.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 0, 1, 1, 1, 1, 1 }, batch.Inputs.AttentionMask!.data<long>().ToArray());
    }

    [Fact]
    public void KtoMatchesHandComputedValues()
    {
        // z = mean((−8 − −8.5), (−9 − −9.2)) = 0.35; desirable r = 1, undesirable r = −0.5; β = 0.1, w_d = 1, w_u = 1.5
        var z = PreferenceLosses.KlBaseline(T(-8f, -9f), T(-8.5f, -9.2f));
        Assert.Equal(0.35, z.item<float>(), 1e-6);
        var (losses, rewards) = PreferenceLosses.Kto(T(-5f, -7f), T(-6f, -6.5f), tensor(new[] { true, false }), z, 0.1, 1.0, 1.5);
        var values = losses.data<float>().ToArray();
        Assert.Equal(1 - Sigmoid(0.1 * (1 - 0.35)), values[0], 1e-6);
        Assert.Equal(1.5 * (1 - Sigmoid(0.1 * (0.35 + 0.5))), values[1], 1e-6);
        Assert.Equal(new[] { 0.1f, -0.05f }, rewards.data<float>().ToArray().Select(v => MathF.Round(v, 6)));
        // The reference point never goes below zero.
        Assert.Equal(0, PreferenceLosses.KlBaseline(T(-9f), T(-8f)).item<float>());
    }

    [Fact]
    public void KtoAtStepZeroWithLoraIsOneHalfPerExampleAndRewardsAreZero()
    {
        using var model = ModelLoader.Load(Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama"));
        Lora.Inject(model, new LoraSettings { R = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] }, seed: 1);
        var examples = new[]
        {
            new UnpairedExample([5, 6, 7], [8, 9, 2], true),
            new UnpairedExample([20, 21], [30, 2], false),
            new UnpairedExample([40], [41, 42, 2], false),
        };
        using var batch = new KtoBatchSource(examples, 3, 0, 1, shuffle: false).Batch(0, 0);
        var output = new KtoObjective(new PreferenceSettings(RlType.Kto, 0.1, DesirableWeight: 1.0, UndesirableWeight: 2.0)).Compute(model, batch);
        Assert.Equal(0.5 * 1 + 0.5 * 2 + 0.5 * 2, output.LossSum.item<float>(), 1e-6);
        Assert.Equal(0, output.Metrics["kl"].item<float>());
        Assert.Equal(0, output.Metrics["rewards/chosen"].item<float>());
        Assert.Equal(0, output.Metrics["rewards/rejected"].item<float>());
        Assert.True(output.Metrics["logps/chosen"].item<float>() < 0);
    }

    [Fact]
    public void KtoBatchesPairEachPromptWithAnotherPromptsCompletionForTheKlRows()
    {
        var examples = new[]
        {
            new UnpairedExample([5, 6], [7, 2], true),
            new UnpairedExample([5, 6], [3, 2], false),  // same prompt as the first: skipped as its KL partner
            new UnpairedExample([8], [9, 10, 2], false),
        };
        using var batch = new KtoBatchSource(examples, 3, 0, 1, shuffle: false).Batch(0, 0);
        Assert.Equal(new long[]
        {
            5, 6, 7, 2, 0,   5, 6, 3, 2, 0,   8, 9, 10, 2, 0,     // the examples
            5, 6, 9, 10, 2,  5, 6, 9, 10, 2,  8, 7, 2, 0, 0,      // KL rows: prompt i + the next other prompt's completion
        }, batch.Inputs.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { -100, -100, 9, 10, 2 }, batch.Labels[3].data<long>().ToArray());
        Assert.Equal(new[] { true, false, false }, batch.Desirable!.data<bool>().ToArray());
    }

    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));
}
