using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Planning;
using SharpTune.Tests.Modeling;

namespace SharpTune.Tests.Planning;

/// <summary>The memory planner: parameter counts from config.json alone, the 8B figures the docs cite, and its forecast against real runs.</summary>
public sealed class MemoryPlannerTests
{
    private const double GiB = 1 << 30;
    private static readonly PlanDevice H100 = PlanDevice.Parse("H100-80GB", cpuPrefersBf16: false);

    private static ModelConfig Llama8B() => ModelFamilies.ParseConfig(new Llama().Presets["llama-3.1-8b"], "llama-3.1-8b preset");

    private static long Component(MemoryForecast f, string name) => f.Components.Where(c => c.Name == name).Sum(c => c.Bytes);

    [Theory]
    [InlineData("hf-tiny", "llama")]
    [InlineData("hf-tiny", "qwen2")]
    [InlineData("hf-tiny", "gemma2")]
    [InlineData("hf-tiny", "phi3")]
    [InlineData("hf-tiny-new", "qwen3")]
    [InlineData("hf-tiny-new", "gemma3")]
    [InlineData("hf-tiny-new", "mixtral")]
    [InlineData("hf-tiny-new", "qwen3_moe")]
    public void InventoryCountsTheParametersTheModelRegisters(string set, string family)
    {
        var dir = Path.Combine(TestPaths.Fixtures, set, family);
        using var model = ModelLoader.Load(dir);
        var inventory = ModelInventory.From(model.Config);
        Assert.Equal(model.parameters().Sum(p => p.numel()), inventory.TotalParams);
    }

    [Fact]
    public void EightBillionFiguresOfTheDocsAreReproduced()
    {
        var model = Llama8B();
        Assert.InRange(ModelInventory.From(model).TotalParams / 1e9, 8.02, 8.04);
        var full = new TrainConfig { Bf16 = Bf16Mode.True, MicroBatchSize = 1, SequenceLen = 8192, GradientCheckpointing = GradientCheckpointingMode.True };
        // docs/gpu.md: bf16 weights 16 + fp32 masters 32 + AdamW moments 64 + bf16 grads 16 ≈ 128 GB.
        var f = new MemoryPlanner(full, model, H100).Forecast();
        double state = Component(f, "weights") + Component(f, "gradients") + Component(f, "optimizer state");
        Assert.InRange(state / 128e9, 0.85, 1.15);
        Assert.False(f.Fits);
        // bf16: full ≈ 16 + 16 + 32 = 64 GB; measured by transformers on an H100 at micro-batch 1 × 8192 with
        // checkpointing (issue #11, docs/gpu.md): 60.7 GiB.
        var bf16Full = new MemoryPlanner(full with { Bf16 = Bf16Mode.Full }, model, H100).Forecast();
        Assert.InRange((Component(bf16Full, "weights") + Component(bf16Full, "gradients") + Component(bf16Full, "optimizer state")) / 64e9, 0.85, 1.15);
        Assert.InRange(bf16Full.PeakBytes / (60.7 * GiB), 0.85, 1.15);
        Assert.True(bf16Full.Fits);
        // LoRA r16 on all linear layers: bf16 base 16 GB + 42 M adapters × 16 B ≈ 16.7 GB.
        var lora = full with { Adapter = AdapterType.Lora, LoraR = 16, LoraTargetLinear = true, MicroBatchSize = 2 };
        var l = new MemoryPlanner(lora, model, H100).Forecast();
        Assert.InRange((Component(l, "weights") + Component(l, "LoRA adapters") + Component(l, "gradients") + Component(l, "optimizer state")) / 16.7e9, 0.85, 1.15);
        Assert.InRange(Component(l, "LoRA adapters") / 4 / 42e6, 0.95, 1.05);
        // docs/quantization.md: NF4 + double quant base ≈ 5.7 GB (linear layers at 0.5159 B, embeddings and lm_head bf16).
        var q = new MemoryPlanner(lora with { LoadIn4bit = true }, model, H100).Forecast();
        Assert.InRange(Component(q, "quantized base") / 3.60e9, 0.97, 1.03);
        Assert.InRange((Component(q, "quantized base") + Component(q, "weights")) / 5.7e9, 0.85, 1.15);
    }

    [Fact]
    public void EightBitAndMuonStateAreCountedAsTheirOptimizersStoreIt()
    {
        var model = Llama8B();
        var inventory = ModelInventory.From(model);
        var config = new TrainConfig { Bf16 = Bf16Mode.Full, MicroBatchSize = 1, SequenceLen = 2048, GradientCheckpointing = GradientCheckpointingMode.True };
        var adamw = new MemoryPlanner(config with { Optimizer = OptimizerType.AdamwTorch }, model, H100).Forecast();
        var eightBit = new MemoryPlanner(config with { Optimizer = OptimizerType.Adamw8bit }, model, H100).Forecast();
        var muon = new MemoryPlanner(config with { Optimizer = OptimizerType.Muon }, model, H100).Forecast();
        long p = inventory.TotalParams;
        // bf16: full keeps AdamW's moments in bf16 (4 B per parameter); AdamW8bit stores 2 B + 8 B per 2048 block, norms in fp32.
        Assert.Equal(4 * p, Component(adamw, "optimizer state"));
        Assert.InRange(Component(eightBit, "optimizer state") / (double)p, 2.0039, 2.006);
        // Muon: one fp32 momentum for the decoder matrices, two fp32 moments for embeddings, lm_head and norms.
        long matrices = inventory.LinearParams;
        long rest = p - matrices;
        Assert.Equal(4 * matrices + 8 * rest, Component(muon, "optimizer state"));
        // The 8-bit step works on one slice of the 525M-element lm_head at a time: its temporaries stay below AdamW's.
        Assert.True(Component(eightBit, "optimizer step temporaries") < Component(adamw, "optimizer step temporaries"));
        Assert.True(eightBit.PeakBytes < adamw.PeakBytes);
    }

    [Fact]
    public void ZeroShardsStateGradientsAndWeightsByWorldSize()
    {
        var model = Llama8B();
        var config = new TrainConfig { Bf16 = Bf16Mode.True, MicroBatchSize = 1, SequenceLen = 4096, GradientCheckpointing = GradientCheckpointingMode.True };
        var one = new MemoryPlanner(config, model, H100).Forecast();
        var zero1 = new MemoryPlanner(config, model, H100, 8, 1).Forecast();
        var zero2 = new MemoryPlanner(config, model, H100, 8, 2).Forecast();
        var zero3 = new MemoryPlanner(config, model, H100, 8, 3).Forecast();
        Assert.Equal(Component(one, "optimizer state") / 8, Component(zero1, "optimizer state"));
        Assert.Equal(Component(one, "gradients"), Component(zero1, "gradients"));
        Assert.Equal(Component(one, "gradients") / 8, Component(zero2, "gradients"));
        Assert.Equal(Component(one, "weights") / 8, Component(zero3, "weights"));
        Assert.True(zero3.PeakBytes < zero2.PeakBytes && zero2.PeakBytes < zero1.PeakBytes && zero1.PeakBytes < one.PeakBytes);
        Assert.True(zero3.Fits);
        Assert.False(one.Fits);
    }

    [Fact]
    public void LargestFitGrowsWithTheDeviceAndShrinksWithoutCheckpointing()
    {
        var model = Llama8B();
        var lora = new TrainConfig { Bf16 = Bf16Mode.True, Adapter = AdapterType.Lora, LoraR = 16, LoraTargetLinear = true, MicroBatchSize = 1, SequenceLen = 2048, GradientCheckpointing = GradientCheckpointingMode.True };
        var l4 = new MemoryPlanner(lora, model, PlanDevice.Parse("L4-24GB", false)).Forecast();
        var h200 = new MemoryPlanner(lora, model, PlanDevice.Parse("H200", false)).Forecast();
        var noCheckpoint = new MemoryPlanner(lora with { GradientCheckpointing = GradientCheckpointingMode.False }, model, PlanDevice.Parse("H200", false)).Forecast();
        int Longest(MemoryForecast f) => f.LargestFits.First(x => x.MicroBatchSize == 1).SequenceLen;
        Assert.True(Longest(h200) > Longest(l4));
        Assert.True(Longest(noCheckpoint) < Longest(h200));
        // Each reported fit does fit and 64 tokens more would not (or it is the context limit).
        var (mb, seq) = l4.LargestFits[0];
        Assert.True(new MemoryPlanner(lora with { MicroBatchSize = mb, SequenceLen = seq }, model, l4.Device).Forecast().Fits);
        if (seq < model.MaxPositionEmbeddings) Assert.False(new MemoryPlanner(lora with { MicroBatchSize = mb, SequenceLen = seq + 64 }, model, l4.Device).Forecast().Fits);
    }

    [Fact]
    public void PlanAndValidatePrintTheForecastAndRefuseUnknownDevices()
    {
        var config = Path.Combine(TestPaths.RepoRoot, "examples", "lora.yaml");
        var (code, output, _) = CliRunner.Run("plan", config, "--gpu", "A100-40GB", "--nproc", "2", "--zero-stage", "2");
        Assert.Equal(0, code);
        Assert.Contains("memory plan for A100-40GB", output);
        Assert.Contains("ZeRO-2", output);
        Assert.Contains("predicted peak", output);
        var (bad, _, error) = CliRunner.Run("plan", config, "--gpu", "V100");
        Assert.Equal(2, bad);
        Assert.Contains("--gpu: 'V100'", error);
        var (ok, validated, _) = CliRunner.Run("validate", config);
        Assert.Equal(0, ok);
        Assert.Contains("memory plan for cpu", validated);
        Assert.Contains("config OK", validated);
        // A micro-batch no machine holds: validate warns with the largest that fits.
        var (stillOk, _, warning) = CliRunner.Run("validate", config, "--set", "micro_batch_size=4000000");
        Assert.Equal(0, stillOk);
        Assert.Contains("warning: predicted peak", warning);
    }
}
