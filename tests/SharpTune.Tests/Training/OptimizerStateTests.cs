using SharpTune.Config;
using SharpTune.Training;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>8-bit AdamW (block-wise quantized moments) and Muon: the mathematics, the state size, exact resume.</summary>
public sealed class OptimizerStateTests(ITestOutputHelper output)
{
    private static readonly string TinyLlama = Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama");

    private static TrainableParameter Param(string name, Tensor value) =>
        new(name, new TorchSharp.Modules.Parameter(value.clone()), TrainableParameter.DecayApplies(name));

    /// <summary>
    /// AdamW and Lion update parameters above <see cref="Optimizer.SliceElements"/> slice by slice (for cache locality):
    /// the result equals one whole-tensor update bit for bit, here on 2.7 slices with weight decay over three steps.
    /// The whole-tensor reference is the same parameter held non-contiguous (a transposed view), which is updated whole.
    /// </summary>
    [Theory]
    [InlineData(OptimizerType.AdamwTorch)]
    [InlineData(OptimizerType.Lion)]
    public void SlicedUpdateEqualsTheWholeTensorUpdate(OptimizerType type)
    {
        manual_seed(11);
        long rows = 700, columns = Optimizer.SliceElements / 256;   // 700 × 1024: two whole slices and part of a third
        var start = randn(rows, columns);
        var sliced = Param("model.layers.0.mlp.up_proj.weight", start);
        var whole = new TrainableParameter(sliced.Name, new TorchSharp.Modules.Parameter(start.t().contiguous().t()), sliced.Decay);
        Assert.False(whole.Parameter.is_contiguous());
        var a = Optimizer.Create(type, [sliced], 0.1, 0.9, 0.99, 1e-8);
        var b = Optimizer.Create(type, [whole], 0.1, 0.9, 0.99, 1e-8);
        for (int step = 0; step < 3; step++)
        {
            var grad = randn(rows, columns);
            sliced.Parameter.grad = grad.clone();
            whole.Parameter.grad = grad.t().contiguous().t();
            a.Step(1e-2, tensor(0.5f));
            b.Step(1e-2, tensor(0.5f));
        }
        Assert.True(sliced.Parameter.allclose(whole.Parameter, 0, 0), $"max |difference| {(sliced.Parameter - whole.Parameter).abs().max().item<float>()}");
        Assert.False(sliced.Parameter.allclose(start, 0, 0));
    }

    [Fact]
    public void DynamicMapsHaveBitsandbytesShape()
    {
        var signed = BlockwiseQuantizer.DynamicMap(signed: true);
        var unsigned = BlockwiseQuantizer.DynamicMap(signed: false);
        Assert.Equal(256, signed.Length);
        Assert.Equal(256, unsigned.Length);
        Assert.Equal(1.0f, signed[^1]);
        Assert.Equal(1.0f, unsigned[^1]);
        Assert.Equal(0f, unsigned[0]);
        Assert.True(signed.Zip(signed.Skip(1)).All(p => p.First < p.Second), "the signed map is strictly ascending");
        Assert.Equal(-0.99296875f, signed[0], 6);          // the last of 64 means of [0.1, 1], negated: -1 is not representable
        Assert.Equal(3.25e-7f, unsigned[1], 9);             // 10^-6 × mean(0.1, 0.55): the finest unsigned step
        Assert.Equal(0.9 / 64 / 2, new BlockwiseQuantizer(signed: true).MaxHalfGap, 6);
    }

    [Fact]
    public void EightBitAdamWTracksFloat32AdamWWithinTheQuantizationBoundOver100Steps()
    {
        const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, lr = 1e-3;
        manual_seed(3);
        var start = randn(96, 128);                 // 12288 values: 6 blocks of 2048
        var p32 = Param("model.layers.0.mlp.up_proj.weight", start);
        var p8 = Param("model.layers.0.mlp.up_proj.weight", start);
        var fp32 = new AdamW([p32], 0.01, beta1, beta2, eps);
        var eight = new AdamW8bit([p8], 0.01, beta1, beta2, eps);
        double boundM = 0, boundV = 0, worstM = 0, worstV = 0;
        var generator = new Random(5);
        for (int step = 1; step <= 100; step++)
        {
            // Gradients whose scale changes from step to step, as in training.
            var grad = randn(96, 128) * (0.1 + 2 * generator.NextDouble());
            p32.Parameter.grad = grad.clone();
            p8.Parameter.grad = grad.clone();
            fp32.Step(lr);
            eight.Step(lr);
            var (m8, v8) = eight.Moments(p8);
            var m32 = fp32.StateTensors[p32.Name + ".exp_avg"];
            var v32 = fp32.StateTensors[p32.Name + ".exp_avg_sq"];
            // Each step the stored moment is rounded once, by at most half a map gap times its block's absmax; the old
            // error decays with beta: e_t ≤ beta·e_(t−1) + absmax_t · max_half_gap.
            boundM = beta1 * boundM + eight.StateTensors[p8.Name + ".exp_avg.absmax"].max().item<float>() * eight.FirstMomentQuantizer.MaxHalfGap;
            boundV = beta2 * boundV + eight.StateTensors[p8.Name + ".exp_avg_sq.absmax"].max().item<float>() * eight.SecondMomentQuantizer.MaxHalfGap;
            double errorM = (m8 - m32).abs().max().item<float>(), errorV = (v8 - v32).abs().max().item<float>();
            Assert.True(errorM <= boundM * 1.0001 + 1e-9, $"step {step}: |m8 − m32| = {errorM:E3} > bound {boundM:E3}");
            Assert.True(errorV <= boundV * 1.0001 + 1e-12, $"step {step}: |v8 − v32| = {errorV:E3} > bound {boundV:E3}");
            worstM = Math.Max(worstM, errorM / m32.abs().max().item<float>());
            worstV = Math.Max(worstV, errorV / v32.abs().max().item<float>());
        }
        var moved32 = p32.Parameter.detach() - start;
        var moved8 = p8.Parameter.detach() - start;
        double relative = ((moved8 - moved32).norm() / moved32.norm()).item<float>();
        output.WriteLine($"100 steps: max |m8−m32|/max|m32| = {worstM:P3}, max |v8−v32|/max|v32| = {worstV:P3}, ‖Δw8 − Δw32‖/‖Δw32‖ = {relative:P3}");
        Assert.True(relative < 0.05, $"the 8-bit trajectory left the float32 one: {relative:P2}");
    }

    [Fact]
    public void EightBitAdamWUpdatedSliceBySliceEqualsTheWholeTensorUpdate()
    {
        manual_seed(4);
        var start = randn(37, 333);                 // 12321 values: 7 blocks, the last one partial
        var whole = Param("model.layers.0.mlp.up_proj.weight", start);
        var sliced = Param("model.layers.0.mlp.up_proj.weight", start);
        var wholeOptimizer = new AdamW8bit([whole], 0.01, 0.9, 0.999, 1e-8, sliceElements: 8 * BlockwiseQuantizer.BlockSize);
        var slicedOptimizer = new AdamW8bit([sliced], 0.01, 0.9, 0.999, 1e-8, sliceElements: 2 * BlockwiseQuantizer.BlockSize);
        for (int step = 0; step < 5; step++)
        {
            var grad = randn(37, 333);
            whole.Parameter.grad = grad.clone();
            sliced.Parameter.grad = grad.clone();
            wholeOptimizer.Step(1e-3);
            slicedOptimizer.Step(1e-3);
        }
        Assert.True(whole.Parameter.detach().eq(sliced.Parameter.detach()).all().item<bool>(), "slicing changed the weights");
        foreach (var (name, state) in wholeOptimizer.StateTensors)
            Assert.True(state.eq(slicedOptimizer.StateTensors[name]).all().item<bool>(), $"slicing changed {name}");
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW8bit([whole], 0, 0.9, 0.999, 1e-8, sliceElements: 1000));
    }

    [Fact]
    public void EightBitStateIsTwoBytesPerParameterMeasured()
    {
        var rows = ListBatchSource.CountingRows(8, 12, 256, seed: 2);
        var dir = TestPaths.TempDir();
        new TrainingRecipe(Config(dir, 2, OptimizerType.Adamw8bit) with { SaveSteps = 2 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null));
        using var state = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(dir, "checkpoint-2", "optimizer.safetensors"));
        using var weights = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(dir, "checkpoint-2", "model.safetensors"));
        long quantizedParams = 0, quantizedBytes = 0, allParams = 0, allBytes = 0;
        foreach (var name in weights.Names)
        {
            using var w = weights.Load(name);
            long n = w.numel();
            long bytes = state.Names.Where(s => s.StartsWith(name + ".", StringComparison.Ordinal)).Sum(s => { using var t = state.Load(s); return t.numel() * t.element_size(); });
            allParams += n;
            allBytes += bytes;
            if (n >= AdamW8bit.MinQuantizedSize)
            {
                quantizedParams += n;
                quantizedBytes += bytes;
                Assert.Equal(2 * n + 2 * 4 * BlockwiseQuantizer.Blocks(n), bytes);
            }
            else Assert.Equal(8 * n, bytes);   // small tensors keep float32 moments, as bitsandbytes' min_8bit_size
        }
        double perParam = (double)quantizedBytes / quantizedParams;
        output.WriteLine($"8-bit AdamW state: {perParam:F4} B/param over the {quantizedParams:N0} parameters of quantized tensors; {(double)allBytes / allParams:F3} B/param over all {allParams:N0} (float32 AdamW: 8)");
        Assert.InRange(perParam, 2.0, 2.005);
    }

    [Theory]
    [InlineData(OptimizerType.Adamw8bit)]
    [InlineData(OptimizerType.Muon)]
    public void ResumeIsExactWithTheOptimizerState(OptimizerType optimizer)
    {
        var rows = ListBatchSource.CountingRows(8, 12, 256, seed: 2);
        var straight = TestPaths.TempDir();
        var interrupted = TestPaths.TempDir();
        var full = new TrainingRecipe(Config(straight, 6, optimizer) with { SaveSteps = 3 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null));
        new TrainingRecipe(Config(interrupted, 3, optimizer) with { SaveSteps = 3 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null));
        manual_seed(12345);
        var resumed = new TrainingRecipe(Config(interrupted, 6, optimizer) with { SaveSteps = 3 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null), Path.Combine(interrupted, "checkpoint-3"));
        for (int i = 0; i < 3; i++) Assert.Equal(full.Logs[3 + i].Loss, resumed.Logs[i].Loss);
        Assert.True(full.Logs[^1].Loss < full.Logs[0].Loss, $"{optimizer}: loss {full.Logs[0].Loss} → {full.Logs[^1].Loss}");
        using var a = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(straight, "model.safetensors"));
        using var b = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(Path.Combine(interrupted, "model.safetensors"));
        foreach (var name in a.Names)
        {
            using var x = a.Load(name);
            using var y = b.Load(name);
            Assert.True(x.eq(y).all().item<bool>(), name);
        }
    }

    [Fact]
    public void NewtonSchulzOrthogonalisesBothOrientations()
    {
        manual_seed(11);
        foreach (var shape in new long[][] { [32, 64], [64, 32] })
        {
            var g = randn(shape);
            var x = Muon.Orthogonalise(g).to(ScalarType.Float32);
            Assert.Equal(shape, x.shape);
            // Singular values of the quintic iteration land near 1 (roughly 0.7–1.2), whatever the input's spectrum.
            var singular = linalg.svdvals(x);
            double lo = singular.min().item<float>(), hi = singular.max().item<float>();
            output.WriteLine($"{shape[0]}×{shape[1]}: singular values in [{lo:F3}, {hi:F3}] (input [{linalg.svdvals(g).min().item<float>():F2}, {linalg.svdvals(g).max().item<float>():F2}])");
            Assert.InRange(lo, 0.5, 1.0);
            Assert.InRange(hi, 1.0, 1.3);
        }
    }

    [Fact]
    public void MuonStepMatchesTorchDefinitionAndLeavesVectorsToAdamW()
    {
        const double lr = 0.02, wd = 0.1;
        manual_seed(4);
        var matrix = Param("model.layers.0.self_attn.q_proj.weight", randn(48, 16));
        var norm = Param("model.layers.0.input_layernorm.weight", ones(16));
        var embedding = Param("model.embed_tokens.weight", randn(20, 16));
        var embeddingStart = embedding.Parameter.detach().clone();
        var muon = new Muon([matrix, norm, embedding], wd, 0.9, 0.999, 1e-8);
        var w0 = matrix.Parameter.detach().clone();
        var g1 = randn(48, 16);
        var g2 = randn(48, 16);
        var gn = randn(16);
        var ge = randn(20, 16);
        foreach (var g in new[] { g1, g2 })
        {
            matrix.Parameter.grad = g.clone();
            norm.Parameter.grad = gn.clone();
            embedding.Parameter.grad = ge.clone();
            muon.Step(lr);
        }
        // By hand, as torch.optim.Muon (nesterov, momentum 0.95, adjust_lr "original" = sqrt(max(1, 48/16))).
        var buffer = zeros(48, 16);
        var w = w0.clone();
        foreach (var g in new[] { g1, g2 })
        {
            buffer = buffer * 0.95 + g * 0.05;
            var update = g * 0.05 + buffer * 0.95;
            w = w * (1 - lr * wd) - Muon.Orthogonalise(update).to(ScalarType.Float32) * (lr * Math.Sqrt(3));
        }
        Assert.True(matrix.Parameter.detach().allclose(w, rtol: 1e-5, atol: 1e-6), "Muon matrix update");
        Assert.Equal(1, muon.OrthogonalisedCount);   // embeddings and vectors are not orthogonalised
        // The norm vector and the embedding take AdamW's update with the same gradients.
        var normRef = Param(norm.Name, ones(16));
        var embeddingRef = Param(embedding.Name, embeddingStart);
        var adam = new AdamW([normRef, embeddingRef], wd, 0.9, 0.999, 1e-8);
        for (int i = 0; i < 2; i++)
        {
            normRef.Parameter.grad = gn.clone();
            embeddingRef.Parameter.grad = ge.clone();
            adam.Step(lr);
        }
        Assert.True(norm.Parameter.detach().allclose(normRef.Parameter.detach(), rtol: 1e-6, atol: 1e-7), "a norm vector takes the AdamW update");
        Assert.True(embedding.Parameter.detach().allclose(embeddingRef.Parameter.detach(), rtol: 1e-6, atol: 1e-7), "the embedding takes the AdamW update");
    }

    private static TrainConfig Config(string outputDir, int steps, OptimizerType optimizer) => new()
    {
        OutputDir = outputDir,
        MaxSteps = steps,
        MicroBatchSize = 2,
        GradientAccumulationSteps = 1,
        LearningRate = 1e-2,
        LrScheduler = LrSchedulerType.Constant,
        Optimizer = optimizer,
        Bf16 = Bf16Mode.False,
        Seed = 7,
        LoggingSteps = 1,
    };
}
