using SharpTune.Inference;
using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Tests.Modeling;

/// <summary>The hf-tiny llama fixture: SharpTune must compute what transformers 4.44.2 computed (tolerances from its README).</summary>
public sealed class LlamaParityTests
{
    private readonly HfFixture fixture = new("llama");

    [Fact]
    public void ScoreReproducesGoldenLossLogprobsAndLastLogits()
    {
        using var model = ModelIO.Load(Path.Combine(fixture.Dir));
        var result = Scorer.Score(model, new ScoreRequest(fixture.InputIds, fixture.Labels, fixture.AttentionMask));

        Assert.Equal(fixture.Loss, result.Loss, 1e-4);
        Assert.Equal(new long[] { 23, 20 }, result.NLabelTokensPerRow);
        var goldenLogprobs = fixture.Golden["logprob_sum_per_row"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        for (int r = 0; r < 2; r++) Assert.Equal(goldenLogprobs[r], result.LogprobSumPerRow[r], 1e-3);
        var goldenLast = fixture.Golden["last_logits"]!.AsArray();
        for (int r = 0; r < 2; r++)
        {
            var expected = goldenLast[r]!.AsArray().Select(n => n!.GetValue<float>()).ToArray();
            Assert.Equal(256, result.LastLogits[r].Length);
            Assert.True(MaxAbsDiff(expected, result.LastLogits[r]) < 1e-3, $"row {r}: max diff {MaxAbsDiff(expected, result.LastLogits[r])}");
        }
    }

    [Fact]
    public void FullLogitsMatchGoldenTensor()
    {
        using var model = ModelIO.Load(fixture.Dir);
        using var golden = fixture.OpenGoldenTensors();
        using var expected = golden.Load("logits");
        using var ids = tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [2, 24]);
        using var noGrad = no_grad();
        using var logits = model.Forward(new ForwardBatch(ids));
        Assert.Equal(new long[] { 2, 24, 256 }, logits.shape);
        Assert.True((logits - expected).abs().max().item<float>() < 1e-3);
    }

    [Fact]
    public void GradientsMatchEveryParameter()
    {
        using var model = ModelIO.Load(fixture.Dir);
        using var golden = fixture.OpenGoldenTensors();
        using var ids = tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [2, 24]);
        using var labels = tensor(fixture.Labels.SelectMany(r => r).ToArray(), [2, 24]);
        using var loss = CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), labels);
        loss.backward();

        var norms = fixture.Golden["grad_norms"]!.AsObject();
        var parameters = model.named_parameters().ToList();
        Assert.Equal(norms.Count, parameters.Count);
        foreach (var (name, parameter) in parameters)
        {
            double expectedNorm = norms[name]!.GetValue<double>();
            double norm = parameter.grad!.norm().item<float>();
            Assert.True(Math.Abs(norm - expectedNorm) <= 1e-3 * expectedNorm, $"{name}: grad norm {norm} vs {expectedNorm}");
            using var expectedGrad = golden.Load("grad/" + name);
            double relative = (parameter.grad! - expectedGrad).norm().item<float>() / expectedGrad.norm().item<float>();
            Assert.True(relative <= 1e-3, $"{name}: relative gradient error {relative}");
        }
    }

    [Fact]
    public void GreedyDecodingReproducesGoldenTokensWithAndWithoutCache()
    {
        using var model = ModelIO.Load(fixture.Dir);
        var options = new GenerationOptions { MaxNewTokens = fixture.GreedyMaxNewTokens };
        Assert.Equal(fixture.Greedy, TokenGenerator.Generate(model, fixture.GreedyPrompt, options));
        Assert.Equal(fixture.Greedy, TokenGenerator.Generate(model, fixture.GreedyPrompt, options with { UseCache = false }));
    }

    [Fact]
    public void KvCacheStepLogitsMatchGoldenStepLogits()
    {
        using var model = ModelIO.Load(fixture.Dir);
        using var golden = fixture.OpenGoldenTensors();
        using var expected = golden.Load("greedy_step_logits");   // (8, 256)
        using var noGrad = no_grad();
        using var cache = new KvCache(model.Config.NumHiddenLayers);
        var context = fixture.GreedyPrompt.ToList();
        for (int step = 0; step < fixture.GreedyMaxNewTokens; step++)
        {
            var input = step == 0 ? context.ToArray() : [context[^1]];
            using var ids = tensor(input, [1, input.Length]);
            using var logits = model.Forward(new ForwardBatch(ids, Cache: cache))[0, -1];
            Assert.True((logits - expected[step]).abs().max().item<float>() < 1e-3, $"step {step}");
            context.Add(logits.argmax().item<long>());
        }
    }

    private static double MaxAbsDiff(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
}
