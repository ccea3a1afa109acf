using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Peft;
using SharpTune.SafeTensors;
using SharpTune.Tests.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Tests.Peft;

/// <summary>The hf-tiny llama_lora fixture: a PEFT adapter (r 4, alpha 8, q_proj + v_proj) applied here must match PEFT.</summary>
public sealed class LoraParityTests
{
    private readonly HfFixture fixture = new("llama_lora");

    private CausalLM LoadAdapted()
    {
        var model = ModelIO.Load(Path.Combine(fixture.Dir, "base"));
        var settings = Lora.Apply(model, Path.Combine(fixture.Dir, "adapter"));
        Assert.Equal(2.0, settings.ScalingFor("model.layers.0.self_attn.q_proj"));
        return model;
    }

    [Fact]
    public void AdaptedModelReproducesGoldenLossAndGreedyTokens()
    {
        using var model = LoadAdapted();
        var result = Scorer.Score(model, new ScoreRequest(fixture.InputIds, fixture.Labels));
        Assert.Equal(fixture.Loss, result.Loss, 1e-4);
        Assert.Equal(fixture.Greedy, TokenGenerator.Generate(model, fixture.GreedyPrompt, new GenerationOptions { MaxNewTokens = fixture.GreedyMaxNewTokens }));
    }

    [Fact]
    public void OnlyAdapterParametersTrainAndTheirGradientsMatchPeft()
    {
        using var model = LoadAdapted();
        using var golden = fixture.OpenGoldenTensors();
        using var ids = tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [2, 24]);
        using var labels = tensor(fixture.Labels.SelectMany(r => r).ToArray(), [2, 24]);
        using var loss = CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), labels);
        loss.backward();

        var norms = fixture.Golden["grad_norms"]!.AsObject();
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        Assert.Equal(8, trainable.Count);   // 2 layers × (q, v) × (A, B)
        foreach (var (name, parameter) in trainable)
        {
            var pefName = "base_model.model." + name.Replace(".weight", ".default.weight");
            double expected = norms[pefName]!.GetValue<double>();
            double norm = parameter.grad!.norm().item<float>();
            Assert.True(Math.Abs(norm - expected) <= 1e-3 * expected, $"{name}: {norm} vs {expected}");
            using var expectedGrad = golden.Load("grad/" + pefName);
            Assert.True((parameter.grad! - expectedGrad).norm().item<float>() <= 1e-3 * expectedGrad.norm().item<float>(), name);
        }
        Assert.All(model.named_parameters().Where(p => !p.parameter.requires_grad), p => Assert.Null(p.parameter.grad));
    }

    [Fact]
    public void MergedTensorsEqualPeftMergeAndUnload()
    {
        using var model = LoadAdapted();
        using var merged = SafeTensorsCheckpoint.Open(Path.Combine(fixture.Dir, "merged"));
        var tensors = Lora.MergedTensors(model, ScalarType.Float32).ToList();
        Assert.Equal(merged.Names.OrderBy(n => n), tensors.Select(t => t.Key).OrderBy(n => n));
        foreach (var (name, value) in tensors)
        {
            using var expected = merged.Load(name);
            Assert.True((value - expected).abs().max().item<float>() < 1e-5, name);
            value.Dispose();
        }
    }

    [Fact]
    public void SavedAdapterRoundTripsWithPeftKeys()
    {
        using var model = LoadAdapted();
        var settings = Lora.Apply(ModelIO.Load(Path.Combine(fixture.Dir, "base")), Path.Combine(fixture.Dir, "adapter"));
        var outDir = TestPaths.TempDir();
        Lora.Save(model, settings, outDir);
        using var saved = SafeTensorsCheckpoint.Open(Path.Combine(outDir, "adapter_model.safetensors"));
        using var original = SafeTensorsCheckpoint.Open(Path.Combine(fixture.Dir, "adapter", "adapter_model.safetensors"));
        Assert.Equal(original.Names.OrderBy(n => n), saved.Names.OrderBy(n => n));
        using var a = saved.Load("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
        using var b = original.Load("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
        Assert.Equal(0f, (a - b).abs().max().item<float>());
        using var reloaded = ModelIO.Load(Path.Combine(fixture.Dir, "base"));
        Lora.Apply(reloaded, outDir);
        Assert.Equal(fixture.Loss, Scorer.Score(reloaded, new ScoreRequest(fixture.InputIds, fixture.Labels)).Loss, 1e-4);
    }
}
