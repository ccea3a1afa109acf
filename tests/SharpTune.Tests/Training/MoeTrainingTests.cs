using SharpTune.Modeling;
using SharpTune.Modeling.Quantization;
using SharpTune.Peft;
using SharpTune.Tests.Modeling;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>Training mixture-of-experts models: the auxiliary loss, gradient checkpointing through routers, LoRA inside experts.</summary>
public sealed class MoeTrainingTests
{
    private static (Tensor Ids, Tensor Labels, LabeledBatch Batch) Inputs(HfFixture fixture)
    {
        var ids = tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [2, 24]);
        var labels = tensor(fixture.Labels.SelectMany(r => r).ToArray(), [2, 24]);
        return (ids, labels, new LabeledBatch(new ForwardBatch(ids), labels));
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen3_moe")]
    public void OutputRouterLogitsAddsCoefTimesAuxLossToTheTrainingLoss(string name)
    {
        var fixture = new HfFixture("hf-tiny-new", name);
        double aux = fixture.Golden["router"]!["aux_loss"]!.GetValue<double>();
        double coef = fixture.Golden["router"]!["router_aux_loss_coef"]!.GetValue<double>();
        using var model = ModelLoader.Load(fixture.Dir);
        model.train();
        var (ids, labels, batch) = Inputs(fixture);
        using (ids) using (labels)
        {
            long units = batch.TrainedTokens;
            Assert.Equal(43, units);
            var plain = new CausalLmObjective().Compute(model, batch);   // config.json: output_router_logits false
            Assert.Empty(plain.Metrics);
            Assert.Equal(fixture.Loss, plain.LossSum.item<float>() / units, 1e-4);

            var withAux = new CausalLmObjective(outputRouterLogits: true).Compute(model, batch);
            Assert.Equal(fixture.Loss + coef * aux, withAux.LossSum.item<float>() / units, 1e-4);
            Assert.Equal(aux, withAux.Metrics["aux_loss"].item<float>(), 1e-5);

            // The aux term trains the routers: their gradients change; the last layer's experts feed no router, so theirs do not.
            using (var loss = plain.LossSum / units) loss.backward();
            var routerName = model.named_parameters().First(p => p.name.EndsWith(".gate.weight", StringComparison.Ordinal)).name;
            var expertName = model.named_parameters().Last(p => p.name.Contains(".experts.0.", StringComparison.Ordinal)).name;
            var before = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
            model.zero_grad();
            using (var loss = withAux.LossSum / units) loss.backward();
            var grads = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
            Assert.True((grads[routerName] - before[routerName]).abs().max().item<float>() > 1e-6);
            Assert.True((grads[expertName] - before[expertName]).abs().max().item<float>() < 1e-7);

            // Evaluation keeps the plain cross-entropy (so perplexity stays exp(loss)).
            model.eval();
            var eval = new CausalLmObjective(outputRouterLogits: true).Compute(model, batch);
            Assert.Equal(fixture.Loss, eval.LossSum.item<float>() / units, 1e-4);
        }
    }

    [Fact]
    public void TrainingRunLogsTheAuxLossWithCheckpointingAndLora()
    {
        // The whole loop: LoRA on every linear layer (experts included), gradient checkpointing, output_router_logits.
        var mixtral = Path.Combine(TestPaths.Fixtures, "hf-tiny-new", "mixtral");
        var config = new SharpTune.Config.TrainConfig
        {
            OutputDir = TestPaths.TempDir(), MaxSteps = 3, MicroBatchSize = 2, LearningRate = 1e-2, Seed = 7,
            LrScheduler = SharpTune.Config.LrSchedulerType.Constant, Bf16 = SharpTune.Config.Bf16Mode.False,
            Adapter = SharpTune.Config.AdapterType.Lora, LoraR = 4, LoraAlpha = 8, LoraTargetLinear = true,
            GradientCheckpointing = SharpTune.Config.GradientCheckpointingMode.True, OutputRouterLogits = true, LoggingSteps = 1,
        };
        var rows = ListBatchSource.CountingRows(6, 16, 256, seed: 3);
        var outcome = new TrainingRecipe(config, mixtral, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(outputRouterLogits: config.OutputRouterLogits), new ListBatchSource(rows, 2), null));
        Assert.Equal(3, outcome.Logs.Count);
        Assert.All(outcome.Logs, log => Assert.InRange(log.Metrics["aux_loss"], 1.0, 4.0));   // top-2 of 4: 2 when balanced
        using var adapter = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(outcome.AdapterDir!, "adapter_model.safetensors"));
        Assert.True(adapter.Contains("base_model.model.model.layers.1.block_sparse_moe.experts.2.w3.lora_B.weight"));
        Assert.DoesNotContain(adapter.Names, n => n.Contains(".gate.", StringComparison.Ordinal));
    }

    [Fact]
    public void OutputRouterLogitsOnADenseModelIsRefused()
    {
        var fixture = new HfFixture("hf-tiny-new", "qwen3");
        using var model = ModelLoader.Load(fixture.Dir);
        model.train();
        var (ids, labels, batch) = Inputs(fixture);
        using (ids) using (labels)
        {
            var error = Assert.Throws<InvalidInputException>(() => new CausalLmObjective(outputRouterLogits: true).Compute(model, batch));
            Assert.Equal("output_router_logits: true, but model_type 'qwen3' has no mixture-of-experts layers", error.Message);
        }
    }

    [Theory]
    [InlineData("mixtral")]
    [InlineData("qwen3_moe")]
    [InlineData("gemma3")]
    public void GradientCheckpointingGivesTheSameGradientsWithTheAuxLoss(string name)
    {
        var fixture = new HfFixture("hf-tiny-new", name);
        var (ids, labels, batch) = Inputs(fixture);
        var objective = new CausalLmObjective(outputRouterLogits: name != "gemma3" ? true : null);
        Dictionary<string, Tensor> Run(bool checkpoint, out float loss)
        {
            var model = ModelLoader.Load(fixture.Dir);
            foreach (var p in model.parameters()) p.requires_grad = true;
            model.train();
            if (checkpoint) GradientCheckpointing.Enable(model);
            using var sum = objective.Compute(model, batch).LossSum;
            loss = sum.item<float>();
            sum.backward();
            return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!);
        }
        using (ids) using (labels)
        {
            var expected = Run(false, out var plainLoss);
            var actual = Run(true, out var checkpointedLoss);
            Assert.Equal(plainLoss, checkpointedLoss, 1e-4);
            foreach (var (parameter, grad) in actual)
            {
                double relative = (grad - expected[parameter]).norm().item<float>() / expected[parameter].norm().item<float>();
                Assert.True(relative < 1e-5, $"{name} {parameter}: {relative}");
            }
        }
    }

    [Fact]
    public void LoraTargetsExpertsAndLeavesTheRouterUnlessNamed()
    {
        var fixture = new HfFixture("hf-tiny-new", "mixtral");
        using var model = ModelLoader.Load(fixture.Dir);
        var allLinear = Lora.AllLinearNames(model);
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "w1", "w3", "w2"], allLinear);
        var settings = new LoraSettings { R = 2, Alpha = 4, TargetModules = allLinear };
        var adapted = Lora.Inject(model, settings, seed: 1);
        Assert.Contains("model.layers.1.block_sparse_moe.experts.3.w2", adapted);
        Assert.DoesNotContain(adapted, n => n.EndsWith(".gate", StringComparison.Ordinal));
        Assert.Equal(2 * (4 + 4 * 3), adapted.Count);

        using var qwen = ModelLoader.Load(new HfFixture("hf-tiny-new", "qwen3_moe").Dir);
        var named = Lora.Inject(qwen, new LoraSettings { R = 2, Alpha = 4, TargetModules = ["gate", "gate_proj"] }, seed: 1);
        Assert.Equal(["model.layers.0.mlp.gate", "model.layers.0.mlp.experts.0.gate_proj"], named.Take(2));
        Assert.Equal(2 * (1 + 8), named.Count);
    }

    [Fact]
    public void QloraQuantizesEveryExpertAndTrainsAdaptersOnThem()
    {
        var fixture = new HfFixture("hf-tiny-new", "mixtral");
        using var model = ModelLoader.Load(fixture.Dir, new ModelLoadOptions { Quantization = QuantizationSettings.Nf4(doubleQuant: true) });
        var quantized = QuantizedLoading.QuantizedLayers(model).Select(l => l.Name).ToList();
        Assert.Contains("model.layers.1.block_sparse_moe.experts.3.w2", quantized);
        Assert.Equal(2 * (4 + 1 + 4 * 3), quantized.Count);   // attention, router, experts
        Lora.Inject(model, new LoraSettings { R = 2, Alpha = 4, TargetModules = Lora.AllLinearNames(model) }, seed: 3);
        var (ids, labels, _) = Inputs(fixture);
        using (ids) using (labels)
        {
            model.train();
            using var loss = CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), labels);
            // NF4 moves this model's loss by well under 3% (routing may change for near-tied tokens).
            Assert.True(Math.Abs(loss.item<float>() - fixture.Loss) < 0.03 * fixture.Loss, $"nf4 loss {loss.item<float>()} vs {fixture.Loss}");
            loss.backward();
            var expertB = model.named_parameters().Single(p => p.name == "model.layers.0.block_sparse_moe.experts.1.w1.lora_B.weight").parameter;
            Assert.True(expertB.grad!.norm().item<float>() > 0);
        }
    }

    [Fact]
    public void ExpertLoraTrainsSavesAndMergesInTheHfLayout()
    {
        var fixture = new HfFixture("hf-tiny-new", "qwen3_moe");
        using var model = ModelLoader.Load(fixture.Dir);
        var settings = new LoraSettings { R = 2, Alpha = 4, TargetModules = ["gate_proj", "up_proj", "down_proj", "q_proj"] };
        Lora.Inject(model, settings, seed: 2);
        // Give lora_B values so the adapter changes the output (PEFT initialises it to zero).
        using (no_grad())
            foreach (var (name, p) in model.named_parameters().Where(p => p.name.Contains(".lora_B.", StringComparison.Ordinal)))
                p.normal_(0, 0.2);
        var (ids, labels, _) = Inputs(fixture);
        using (ids) using (labels)
        {
            model.train();
            using var loss = CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), labels);
            loss.backward();
            var expertA = model.named_parameters().Single(p => p.name == "model.layers.1.mlp.experts.5.down_proj.lora_A.weight").parameter;
            Assert.True(expertA.grad!.norm().item<float>() > 0);
            Assert.All(model.named_parameters().Where(p => p.name.EndsWith(".gate.weight", StringComparison.Ordinal)), p => Assert.False(p.parameter.requires_grad));
            model.eval();
            using var noGrad = no_grad();
            using var adaptedLogits = model.Forward(new ForwardBatch(ids));

            var adapterDir = TestPaths.TempDir();
            Lora.Save(model, settings, adapterDir);
            using (var saved = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(adapterDir, "adapter_model.safetensors")))
                Assert.True(saved.Contains("base_model.model.model.layers.1.mlp.experts.5.down_proj.lora_A.weight"));

            var mergedDir = TestPaths.TempDir();
            ModelIO.SaveTensors(model.Config, LoraMerge.MergedTensors(model, ScalarType.Float32), ScalarType.Float32, mergedDir);
            using var merged = ModelLoader.Load(mergedDir);
            using (var original = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(fixture.Dir))
            using (var written = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(mergedDir))
                Assert.Equal(original.Names.OrderBy(n => n, StringComparer.Ordinal), written.Names.OrderBy(n => n, StringComparer.Ordinal));
            using var mergedLogits = merged.Forward(new ForwardBatch(ids));
            Assert.True(TinyModels.MaxAbsDiff(adaptedLogits, mergedLogits) < 1e-4);

            using var reloaded = ModelLoader.Load(fixture.Dir, new ModelLoadOptions { Adapter = SavedLoraAdapter.Open(adapterDir) });
            using var reloadedLogits = reloaded.Forward(new ForwardBatch(ids));
            Assert.Equal(0.0, TinyModels.MaxAbsDiff(adaptedLogits, reloadedLogits), 6);
            using var baseModel = ModelLoader.Load(fixture.Dir);
            using var baseLogits = baseModel.Forward(new ForwardBatch(ids));
            Assert.True(TinyModels.MaxAbsDiff(adaptedLogits, baseLogits) > 1e-2);
        }
    }
}
