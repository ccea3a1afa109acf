using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Peft;
using SharpTune.SafeTensors;
using SharpTune.Tests.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Tests.Peft;

/// <summary>
/// The hf-tiny llama_lora fixture: merging and saving a PEFT adapter (r 4, alpha 8, q_proj + v_proj) must match PEFT.
/// Loss, logits, gradients and greedy tokens of every adapter fixture are in <see cref="SharpTune.Tests.Modeling.HfParityTests"/>.
/// </summary>
public sealed class LoraParityTests
{
    private readonly HfFixture fixture = new("llama_lora");

    private CausalLM LoadAdapted()
    {
        var adapter = SavedLoraAdapter.Open(Path.Combine(fixture.Dir, "adapter"));
        var model = ModelLoader.Load(Path.Combine(fixture.Dir, "base"), new ModelLoadOptions { Adapter = adapter });
        Assert.Equal(2.0, adapter.Settings.ScalingFor("model.layers.0.self_attn.q_proj"));
        return model;
    }

    [Fact]
    public void MergedTensorsEqualPeftMergeAndUnload()
    {
        using var model = LoadAdapted();
        using var merged = SafeTensorsCheckpoint.Open(Path.Combine(fixture.Dir, "merged"));
        var tensors = LoraMerge.MergedTensors(model, ScalarType.Float32).ToList();
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
        var settings = SavedLoraAdapter.Open(Path.Combine(fixture.Dir, "adapter")).Settings;
        var outDir = TestPaths.TempDir();
        Lora.Save(model, settings, outDir);
        using var saved = SafeTensorsCheckpoint.Open(Path.Combine(outDir, "adapter_model.safetensors"));
        using var original = SafeTensorsCheckpoint.Open(Path.Combine(fixture.Dir, "adapter", "adapter_model.safetensors"));
        Assert.Equal(original.Names.OrderBy(n => n), saved.Names.OrderBy(n => n));
        using var a = saved.Load("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
        using var b = original.Load("base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight");
        Assert.Equal(0f, (a - b).abs().max().item<float>());
        using var reloaded = ModelLoader.Load(Path.Combine(fixture.Dir, "base"), new ModelLoadOptions { Adapter = SavedLoraAdapter.Open(outDir) });
        Assert.Equal(fixture.Loss, Scorer.Score(reloaded, new ScoreRequest(fixture.InputIds, fixture.Labels)).Loss, 1e-4);
    }

    [Fact]
    public void AdapterLoadedThroughTheLoaderRunsWithoutDropout()
    {
        // The adapter is attached after the base is read; the loader puts the whole model in eval mode last, so a
        // saved lora_dropout (0.5 here) does not perturb inference.
        var adapterDir = TestPaths.TempDir();
        foreach (var file in Directory.GetFiles(Path.Combine(fixture.Dir, "adapter"))) File.Copy(file, Path.Combine(adapterDir, Path.GetFileName(file)));
        var configPath = Path.Combine(adapterDir, "adapter_config.json");
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["lora_dropout"] = 0.5;
        File.WriteAllText(configPath, config.ToJsonString());
        using var model = ModelLoader.Load(Path.Combine(fixture.Dir, "base"), new ModelLoadOptions { Adapter = SavedLoraAdapter.Open(adapterDir) });
        var first = Scorer.Score(model, new ScoreRequest(fixture.InputIds, fixture.Labels)).Loss;
        var second = Scorer.Score(model, new ScoreRequest(fixture.InputIds, fixture.Labels)).Loss;
        Assert.Equal(first, second);
        Assert.Equal(fixture.Loss, first, 1e-4);
    }
}
