using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Peft;
using static TorchSharp.torch;

namespace SharpTune.Tests.Modeling;

/// <summary>
/// Every fixture folder under tests/fixtures/hf-tiny and hf-tiny-new (each family, plus the PEFT LoRA and DoRA adapters):
/// SharpTune must compute what transformers computed, within the tolerances of the fixtures' READMEs.
/// </summary>
public sealed class HfParityTests
{
    public static TheoryData<string> Fixtures() => new(HfFixture.All());

    public static TheoryData<string> MoeFixtures() => new(HfFixture.All().Where(n => HfFixture.Parse(n).Golden["router"] is not null));

    [Fact]
    public void EveryFamilyHasAFixture()
    {
        var names = HfFixture.All().ToList();
        Assert.Equal(13, names.Count);
        var types = names.Select(HfFixture.Parse).Where(f => !f.IsAdapter).Select(f => ModelFamilies.LoadConfig(f.ModelDir).ModelType).ToHashSet();
        Assert.Equal(ModelFamilies.All.Select(f => f.ModelType).ToHashSet(), types);
    }

    private static CausalLM Load(HfFixture fixture)
    {
        var adapter = fixture.IsAdapter ? SavedLoraAdapter.Open(Path.Combine(fixture.Dir, "adapter")) : null;
        return ModelLoader.Load(fixture.ModelDir, new ModelLoadOptions { Adapter = adapter });
    }

    private static Tensor Batch(long[][] rows) => tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length]);

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void ScoreReproducesGoldenLossLogprobsAndLastLogits(string name)
    {
        var fixture = HfFixture.Parse(name);
        using var model = Load(fixture);
        var result = Scorer.Score(model, new ScoreRequest(fixture.InputIds, fixture.Labels, fixture.AttentionMask));

        Assert.True(Math.Abs(fixture.Loss - result.Loss) < 1e-4, $"{name}: loss {result.Loss} vs {fixture.Loss}");
        Assert.Equal(fixture.Golden["n_label_tokens_per_row"]!.AsArray().Select(n => n!.GetValue<long>()), result.NLabelTokensPerRow);
        var goldenLogprobs = fixture.Golden["logprob_sum_per_row"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        for (int r = 0; r < goldenLogprobs.Length; r++)
            Assert.True(Math.Abs(goldenLogprobs[r] - result.LogprobSumPerRow[r]) < 1e-3, $"{name} row {r}: log-prob sum {result.LogprobSumPerRow[r]} vs {goldenLogprobs[r]}");
        if (fixture.Golden["last_logits"] is { } goldenLast)
        {
            for (int r = 0; r < goldenLast.AsArray().Count; r++)
            {
                var expected = goldenLast[r]!.AsArray().Select(n => n!.GetValue<float>()).ToArray();
                Assert.Equal(expected.Length, result.LastLogits[r].Length);
                double diff = expected.Zip(result.LastLogits[r], (x, y) => Math.Abs((double)x - y)).Max();
                Assert.True(diff < 1e-3, $"{name} row {r}: last logits differ by {diff}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void FullLogitsMatchGoldenTensor(string name)
    {
        var fixture = HfFixture.Parse(name);
        using var model = Load(fixture);
        using var golden = fixture.OpenGoldenTensors();
        using var expected = golden.Load("logits");
        using var ids = Batch(fixture.InputIds);
        using var noGrad = no_grad();
        using var logits = model.Forward(new ForwardBatch(ids));
        Assert.Equal(expected.shape, logits.shape);
        double diff = (logits - expected).abs().max().item<float>();
        Assert.True(diff < 1e-3, $"{name}: logits differ by {diff}");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void GradientsMatchEveryTrainedParameter(string name)
    {
        var fixture = HfFixture.Parse(name);
        using var model = Load(fixture);
        using var golden = fixture.OpenGoldenTensors();
        using var ids = Batch(fixture.InputIds);
        using var labels = Batch(fixture.Labels);
        using var loss = CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), labels);
        loss.backward();

        // Plain models: every parameter under its checkpoint name. Adapters: PEFT's in-memory names, via the file keys.
        var fileToGolden = fixture.Golden["adapter_param_to_file_key"]?.AsObject().ToDictionary(p => p.Value!.GetValue<string>(), p => p.Key);
        string GoldenName(string parameter) => fileToGolden is null ? parameter : fileToGolden[Lora.FilePrefix + parameter];
        var norms = fixture.Golden["grad_norms"]!.AsObject();
        var trained = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        Assert.Equal(norms.Count, trained.Count);
        foreach (var (parameter, value) in trained)
        {
            var goldenName = GoldenName(parameter);
            double expectedNorm = norms[goldenName]!.GetValue<double>();
            Assert.NotNull(value.grad);
            double norm = value.grad!.norm().item<float>();
            Assert.True(Math.Abs(norm - expectedNorm) <= 1e-3 * expectedNorm, $"{name} {parameter}: grad norm {norm} vs {expectedNorm}");
            using var expectedGrad = golden.Load("grad/" + goldenName);
            double relative = (value.grad! - expectedGrad).norm().item<float>() / expectedGrad.norm().item<float>();
            Assert.True(relative <= 1e-3, $"{name} {parameter}: relative gradient error {relative}");
        }
        Assert.All(model.named_parameters().Where(p => !p.parameter.requires_grad), p => Assert.Null(p.parameter.grad));
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void GreedyDecodingReproducesGoldenTokensWithAndWithoutCache(string name)
    {
        var fixture = HfFixture.Parse(name);
        using var model = Load(fixture);
        var options = new GenerationOptions { MaxNewTokens = fixture.GreedyMaxNewTokens };
        Assert.Equal(fixture.Greedy, TokenGenerator.Generate(model, fixture.GreedyPrompt, options));
        Assert.Equal(fixture.Greedy, TokenGenerator.Generate(model, fixture.GreedyPrompt, options with { UseCache = false }));
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void KvCacheStepLogitsMatchGoldenStepLogits(string name)
    {
        var fixture = HfFixture.Parse(name);
        using var model = Load(fixture);
        using var golden = fixture.OpenGoldenTensors();
        using var expected = golden.Load("greedy_step_logits");   // (steps, V)
        using var noGrad = no_grad();
        using var cache = new KvCache(model.Config.NumHiddenLayers);
        var context = fixture.GreedyPrompt.ToList();
        for (int step = 0; step < fixture.GreedyMaxNewTokens; step++)
        {
            var input = step == 0 ? context.ToArray() : [context[^1]];
            using var ids = tensor(input, [1, input.Length]);
            using var logits = model.Forward(new ForwardBatch(ids, Cache: cache))[0, -1];
            double diff = (logits - expected[step]).abs().max().item<float>();
            Assert.True(diff < 1e-3, $"{name} step {step}: logits differ by {diff}");
            context.Add(logits.argmax().item<long>());
        }
    }

    [Theory]
    [MemberData(nameof(MoeFixtures))]
    public void LoadBalancingLossMatchesGoldenAuxLoss(string name)
    {
        var fixture = HfFixture.Parse(name);
        using var model = Load(fixture);
        var router = fixture.Golden["router"]!;
        var moe = model.Config.Moe!;
        Assert.Equal((router["n_experts"]!.GetValue<int>(), router["top_k"]!.GetValue<int>()), (moe.NumExperts, moe.TopK));
        Assert.Equal(router["router_aux_loss_coef"]!.GetValue<double>(), moe.RouterAuxLossCoef);
        using var ids = Batch(fixture.InputIds);
        using var mask = Batch(fixture.AttentionMask);
        using var noGrad = no_grad();
        var output = model.HiddenAndRouterLogits(new ForwardBatch(ids));
        Assert.Equal(moe.SparseLayers.Count(s => s), output.RouterLogits.Count);

        // Tokens each expert received in each layer: the routing choices equal transformers'.
        var perLayer = router["tokens_per_expert_per_layer"]!.AsArray();
        for (int layer = 0; layer < perLayer.Count; layer++)
        {
            using var chosen = output.RouterLogits[layer].topk(moe.TopK, -1).indexes;
            var counts = chosen.reshape(-1).bincount(null, moe.NumExperts).data<long>().ToArray();
            Assert.Equal(perLayer[layer]!.AsArray().Select(n => n!.GetValue<long>()), counts);
        }
        using var withoutMask = LoadBalancingLoss.Compute(output.RouterLogits, moe.NumExperts, moe.TopK, null);
        using var withMask = LoadBalancingLoss.Compute(output.RouterLogits, moe.NumExperts, moe.TopK, mask);
        double expected = router["aux_loss"]!.GetValue<double>();
        Assert.True(Math.Abs(withoutMask.item<float>() - expected) < 1e-5, $"{name}: aux loss {withoutMask.item<float>()} vs {expected}");
        Assert.True(Math.Abs(withMask.item<float>() - expected) < 1e-5, $"{name}: aux loss with the all-ones mask {withMask.item<float>()} vs {expected}");
    }
}
