using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Native;
using SharpTune.Peft;
using SharpTune.SafeTensors;
using SharpTune.Tests.Modeling;
using SharpTune.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>bf16 / fp16 compute with float32 master weights, loss scaling and device selection (on the CPU).</summary>
public sealed class PrecisionTests
{
    private readonly HfFixture fixture = new("llama");

    [Fact]
    public void Bf16ModelReproducesTheGoldenLossWithinTwoHundredths()
    {
        using var model = ModelLoader.Load(fixture.Dir, new ModelLoadOptions { DType = ScalarType.BFloat16 });
        Assert.Equal(ScalarType.BFloat16, model.Model.EmbedTokens.Weight.dtype);
        using var ids = tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [2, 24]);
        using var labels = tensor(fixture.Labels.SelectMany(r => r).ToArray(), [2, 24]);
        using var noGrad = no_grad();
        using var logits = model.Forward(new ForwardBatch(ids));
        Assert.Equal(ScalarType.Float32, logits.dtype);   // the loss is taken in fp32
        double loss = CausalLmLoss.Mean(logits, labels).item<float>();
        Assert.True(Math.Abs(loss - fixture.Loss) < 2e-2, $"bf16 loss {loss} vs golden {fixture.Loss}");
        Assert.NotEqual(fixture.Loss, loss, 1e-6);   // it really ran in bf16
    }

    [Fact]
    public void Bf16LoraKeepsFloat32AdaptersAndGradients()
    {
        using var model = ModelLoader.Load(fixture.Dir, new ModelLoadOptions { DType = ScalarType.BFloat16 });
        Lora.Inject(model, new LoraSettings { R = 4, Alpha = 8, TargetModules = ["q_proj", "v_proj"] }, seed: 1);
        using var ids = tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [2, 24]);
        using var labels = tensor(fixture.Labels.SelectMany(r => r).ToArray(), [2, 24]);
        using var loss = CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), labels);
        loss.backward();
        var adapters = model.named_parameters().Where(p => p.name.Contains("lora_")).ToList();
        Assert.Equal(8, adapters.Count);
        Assert.All(adapters, p => Assert.Equal(ScalarType.Float32, p.parameter.dtype));
        // B starts at zero, so only B receives a gradient at step 0, in float32.
        Assert.All(adapters.Where(p => p.name.Contains("lora_B")), p => Assert.True(p.parameter.grad!.dtype == ScalarType.Float32 && p.parameter.grad.norm().item<float>() > 0));
        Assert.Equal(ScalarType.BFloat16, model.named_parameters().First(p => p.name.EndsWith("q_proj.weight")).parameter.dtype);
    }

    [Fact]
    public void MasterWeightsAccumulateUpdatesTooSmallForBf16()
    {
        // 1 + 1e-4 rounds back to 1 in bf16 (8 mantissa bits); 100 such steps move a float32 master by 1e-2.
        var parameter = new Parameter(ones(4, dtype: ScalarType.BFloat16));
        var trainable = new[] { new TrainableParameter("w", parameter, Decay: false) };
        var withMaster = new Sgd(trainable, 0);
        for (int i = 0; i < 100; i++)
        {
            parameter.grad = full(4, -1.0, dtype: ScalarType.BFloat16);
            withMaster.Step(1e-4);
        }
        Assert.Equal(1.01, withMaster.StateTensors["w.master"][0].item<float>(), 1e-4);
        Assert.Equal(1.0078125, parameter[0].to(ScalarType.Float32).item<float>());   // bf16 nearest to 1.01

        var inPlace = new Parameter(ones(4, dtype: ScalarType.BFloat16));
        var pure = new Sgd([new TrainableParameter("w", inPlace, Decay: false)], 0) { MasterWeights = false };
        for (int i = 0; i < 100; i++)
        {
            inPlace.grad = full(4, -1.0, dtype: ScalarType.BFloat16);
            pure.Step(1e-4);
        }
        Assert.Equal(1.0, inPlace[0].to(ScalarType.Float32).item<float>());   // every update rounded away

        // bf16: full keeps AdamW moments in the parameter's dtype, as torch does; with masters they are float32.
        var pureBf16 = new Parameter(ones(4, dtype: ScalarType.BFloat16));
        var adam = new SharpTune.Training.AdamW([new TrainableParameter("w", pureBf16, Decay: false)], 0, 0.9, 0.999, 1e-8) { MasterWeights = false };
        pureBf16.grad = full(4, 0.5, dtype: ScalarType.BFloat16);
        adam.Step(1e-2);
        Assert.Equal(ScalarType.BFloat16, adam.StateTensors["w.exp_avg_sq"].dtype);
        Assert.Equal(0.98828125f, pureBf16[0].to(ScalarType.Float32).item<float>());   // 1 − lr·m̂/√v̂ = 0.99, nearest bf16
    }

    [Fact]
    public void GradMultiplierScalesTheFloat32Gradient()
    {
        var parameter = new Parameter(zeros(2));
        var sgd = new Sgd([new TrainableParameter("w", parameter, Decay: false)], 0);
        parameter.grad = tensor(new[] { 4f, -8f });
        sgd.Step(0.5, tensor(0.25f));
        Assert.Equal(new[] { -0.5f, 1f }, parameter.data<float>().ToArray());
    }

    [Fact]
    public void DynamicLossScalerBacksOffOnOverflowAndGrowsAfterCleanSteps()
    {
        var scaler = new DynamicLossScaler(initialScale: 1024, growthInterval: 3);
        Assert.False(scaler.Update(gradientsFinite: false));
        Assert.Equal(512, scaler.Scale);
        Assert.True(scaler.Update(true));
        Assert.True(scaler.Update(true));
        Assert.Equal(512, scaler.Scale);
        Assert.True(scaler.Update(true));
        Assert.Equal(1024, scaler.Scale);
        Assert.Equal(0, scaler.CleanSteps);
    }

    [Fact]
    public void PrecisionFollowsBf16AndFp16Keys()
    {
        var cpu = CPU;
        Assert.Equal(new TrainingPrecision(ScalarType.BFloat16, true, false), TrainingPrecision.Resolve(new TrainConfig { Bf16 = Bf16Mode.True }, cpu));
        Assert.Equal(new TrainingPrecision(ScalarType.BFloat16, false, false), TrainingPrecision.Resolve(new TrainConfig { Bf16 = Bf16Mode.Full }, cpu));
        Assert.Equal(new TrainingPrecision(ScalarType.Float16, true, true), TrainingPrecision.Resolve(new TrainConfig { Bf16 = Bf16Mode.False, Fp16 = true }, cpu));
        Assert.Equal(TrainingPrecision.Float32, TrainingPrecision.Resolve(new TrainConfig { Bf16 = Bf16Mode.False }, cpu));
        // auto on a CPU: bf16 only with AMX-BF16 (elsewhere bf16 matmul can be ~100× slower than fp32).
        var auto = TrainingPrecision.Resolve(new TrainConfig { Bf16 = Bf16Mode.Auto }, cpu);
        Assert.Equal(CpuFeatures.HasAmxBf16() ? ScalarType.BFloat16 : ScalarType.Float32, auto.ComputeDType);
        var e = Assert.Throws<InvalidInputException>(() => TrainingPrecision.Resolve(new TrainConfig { Bf16 = Bf16Mode.True, Fp16 = true }, cpu));
        Assert.Equal("fp16: true and bf16: true both set; choose one (bf16 needs no loss scaling)", e.Message);
    }

    [Fact]
    public void DeviceSpecsResolveOrExplainWhatIsMissing()
    {
        Assert.Equal(DeviceType.CPU, ComputeDevice.Resolve("cpu").type);
        Assert.Equal(TorchSharp.torch.cuda.is_available() ? DeviceType.CUDA : DeviceType.CPU, ComputeDevice.Resolve("auto").type);
        var bad = Assert.Throws<InvalidInputException>(() => ComputeDevice.Resolve("gpu0"));
        Assert.Equal("device: 'gpu0' is not a device; allowed: auto, cpu, cuda, cuda:N (N = 0, 1, ...)", bad.Message);
    }

    [SkippableFact]
    public void CudaRequestedWithoutCudaIsRefused()
    {
        Skip.If(TorchSharp.torch.cuda.is_available(), "this libtorch has CUDA; the refusal is for CPU-only builds");
        var e = Assert.Throws<InvalidInputException>(() => ComputeDevice.Resolve("cuda:1"));
        Assert.StartsWith("device: cuda:1 requested but CUDA is not available to this libtorch", e.Message);
    }

    [SkippableFact]
    public void CudaIndexBeyondTheDeviceCountIsRefused()
    {
        Skip.IfNot(TorchSharp.torch.cuda.is_available(), "no CUDA device (hardware, not data: skipped under CI too)");
        int count = TorchSharp.torch.cuda.device_count();
        Assert.Equal(DeviceType.CUDA, ComputeDevice.Resolve("cuda:0").type);
        var e = Assert.Throws<InvalidInputException>(() => ComputeDevice.Resolve($"cuda:{count}"));
        Assert.Contains($"cuda:{count}", e.Message);
    }

    [Fact]
    public void Bf16FullFineTuneResumesExactlyWithItsFloat32Masters()
    {
        string tinyLlama = Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama");
        var rows = ListBatchSource.CountingRows(8, 12, 256, seed: 3);
        TrainConfig Config(string dir, int steps) => new()
        {
            OutputDir = dir, MaxSteps = steps, MicroBatchSize = 2, GradientAccumulationSteps = 1, LearningRate = 1e-3,
            LrScheduler = LrSchedulerType.Constant, Optimizer = OptimizerType.AdamwTorch, Bf16 = Bf16Mode.True, Seed = 5,
            LoggingSteps = 1, SaveSteps = 2,
        };
        var straight = TestPaths.TempDir();
        var interrupted = TestPaths.TempDir();
        var full = new TrainingRecipe(Config(straight, 4), tinyLlama, TextWriter.Null).Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null));
        new TrainingRecipe(Config(interrupted, 2), tinyLlama, TextWriter.Null).Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null));
        var resumed = new TrainingRecipe(Config(interrupted, 4), tinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null), Path.Combine(interrupted, "checkpoint-2"));

        for (int i = 0; i < 2; i++) Assert.Equal(full.Logs[2 + i].Loss, resumed.Logs[i].Loss);
        using var optimizerState = SafeTensorsCheckpoint.Open(Path.Combine(interrupted, "checkpoint-2", "optimizer.safetensors"));
        using (var master = optimizerState.Load("model.layers.0.mlp.up_proj.weight.master")) Assert.Equal(ScalarType.Float32, master.dtype);
        using var a = SafeTensorsCheckpoint.Open(Path.Combine(straight, "model.safetensors"));
        using var b = SafeTensorsCheckpoint.Open(Path.Combine(interrupted, "model.safetensors"));
        using var before = SafeTensorsCheckpoint.Open(Path.Combine(tinyLlama, "model.safetensors"));
        const string key = "model.layers.1.self_attn.o_proj.weight";
        using var straightWeight = a.Load(key);
        using var resumedWeight = b.Load(key);
        Assert.Equal(ScalarType.BFloat16, straightWeight.dtype);   // saved in the compute dtype, like the run's model
        Assert.True(straightWeight.equal(resumedWeight).all().item<bool>());
        using var original = before.Load(key, ScalarType.BFloat16);
        Assert.False(straightWeight.equal(original).all().item<bool>());
    }
}
