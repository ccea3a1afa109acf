using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.SafeTensors;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>Fixed rows of token ids; epoch e visits them in a seeded permutation, micro-batches of equal-length rows.</summary>
internal sealed class ListBatchSource(IReadOnlyList<(long[] Ids, long[] Labels)> rows, int microBatch, int seed = 0) : IBatchSource
{
    public int BatchesPerEpoch => rows.Count / microBatch;

    public LabeledBatch Batch(int epoch, int index)
    {
        var order = Enumerable.Range(0, rows.Count).OrderBy(i => new Random(seed + epoch * 7919 + i).Next()).ToArray();
        var picked = order.Skip(index * microBatch).Take(microBatch).Select(i => rows[i]).ToList();
        int width = picked[0].Ids.Length;
        return new LabeledBatch(
            new ForwardBatch(tensor(picked.SelectMany(r => r.Ids).ToArray(), [picked.Count, width])),
            tensor(picked.SelectMany(r => r.Labels).ToArray(), [picked.Count, width]));
    }

    /// <summary>Rows of a learnable pattern: each row counts upward from a random start (mod vocab).</summary>
    public static List<(long[] Ids, long[] Labels)> CountingRows(int count, int width, int vocab, int seed, bool maskPrefix = false)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            int start = random.Next(3, vocab);
            var ids = Enumerable.Range(0, width).Select(t => (long)(3 + (start + t) % (vocab - 3))).ToArray();
            int masked = maskPrefix ? random.Next(0, width / 2) : 0;
            var labels = ids.Select((id, t) => t < masked ? -100L : id).ToArray();
            return (ids, labels);
        }).ToList();
    }
}

public sealed class TrainerTests
{
    private static readonly string TinyLlama = Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama");

    private static TrainConfig Config(string outputDir, int steps, int microBatch, int accumulation, bool lora = false) => new()
    {
        OutputDir = outputDir,
        MaxSteps = steps,
        MicroBatchSize = microBatch,
        GradientAccumulationSteps = accumulation,
        LearningRate = 1e-2,
        LrScheduler = LrSchedulerType.Constant,
        Optimizer = OptimizerType.AdamwTorch,
        MaxGradNorm = 1.0,
        Bf16 = Bf16Mode.False,   // equalities to 1e-6 need fp32 on every CPU (auto picks bf16 on AMX machines)
        Seed = 7,
        Adapter = lora ? AdapterType.Lora : null,
        LoraR = 4,
        LoraAlpha = 8,
        LoraDropout = lora ? 0.1 : 0,
        LoraTargetLinear = lora,
        LoggingSteps = 1,
    };

    private static float[] Weights(string dir, string file, string name)
    {
        using var checkpoint = SafeTensorsCheckpoint.Open(Path.Combine(dir, file));
        using var t = checkpoint.Load(name);
        return t.data<float>().ToArray();
    }

    [Fact]
    public void AccumulationIsTokenNormalisedLikeOneBigBatch()
    {
        // Rows with different numbers of trained tokens: a mean of micro-batch means would weight them wrongly.
        var rows = ListBatchSource.CountingRows(4, 16, 256, seed: 1, maskPrefix: true);
        var accumulated = TestPaths.TempDir();
        var bigBatch = TestPaths.TempDir();
        new TrainingRecipe(Config(accumulated, 1, 1, 4) with { Optimizer = OptimizerType.Sgd, MaxGradNorm = 0 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 1), null));
        new TrainingRecipe(Config(bigBatch, 1, 4, 1) with { Optimizer = OptimizerType.Sgd, MaxGradNorm = 0 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 4), null));
        foreach (var name in new[] { "model.layers.1.mlp.down_proj.weight", "lm_head.weight", "model.embed_tokens.weight" })
        {
            var a = Weights(accumulated, "model.safetensors", name);
            var b = Weights(bigBatch, "model.safetensors", name);
            var original = Weights(TinyLlama, "model.safetensors", name);
            Assert.True(a.Zip(original).Max(p => Math.Abs(p.First - p.Second)) > 1e-5, $"{name} did not change");
            Assert.True(a.Zip(b).Max(p => Math.Abs(p.First - p.Second)) < 1e-6, name);
        }
    }

    [Fact]
    public void ResumeFromCheckpointReproducesTheUninterruptedRunExactly()
    {
        var rows = ListBatchSource.CountingRows(8, 12, 256, seed: 2);
        var straight = TestPaths.TempDir();
        var interrupted = TestPaths.TempDir();
        var full = new TrainingRecipe(Config(straight, 6, 2, 2, lora: true) with { SaveSteps = 3 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null));
        new TrainingRecipe(Config(interrupted, 3, 2, 2, lora: true) with { SaveSteps = 3 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null));
        // Scramble the global RNG as a new process would have it; the checkpoint must restore it.
        manual_seed(12345);
        var resumed = new TrainingRecipe(Config(interrupted, 6, 2, 2, lora: true) with { SaveSteps = 3 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null), Path.Combine(interrupted, "checkpoint-3"));

        Assert.Equal(6, full.Logs.Count);
        Assert.Equal(3, resumed.Logs.Count);
        for (int i = 0; i < 3; i++) Assert.Equal(full.Logs[3 + i].Loss, resumed.Logs[i].Loss);
        const string key = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
        Assert.Equal(Weights(straight, "adapter_model.safetensors", key), Weights(interrupted, "adapter_model.safetensors", key));
        var metrics = File.ReadAllLines(Path.Combine(interrupted, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!["step"]!.GetValue<int>()).ToArray();
        Assert.Equal(new[] { 1, 2, 3, 4, 5, 6 }, metrics);
        foreach (var file in new[] { "adapter_model.safetensors", "adapter_config.json", "optimizer.safetensors", "optimizer.json", "scheduler.json", "trainer_state.json", "rng_state.safetensors", "config.yaml" })
            Assert.True(File.Exists(Path.Combine(interrupted, "checkpoint-3", file)), file);
    }

    [Fact]
    public void CancellingMidRunLeavesACheckpointThatResumesToTheSameResult()
    {
        // What Ctrl-C does: the token is cancelled while step 3 runs; the loop finishes that step, checkpoints, stops.
        var rows = ListBatchSource.CountingRows(8, 12, 256, seed: 4);
        var interrupted = TestPaths.TempDir();
        var straight = TestPaths.TempDir();
        using var cancel = new CancellationTokenSource();
        var source = new CancellingSource(new ListBatchSource(rows, 2), cancelAtCall: 3, cancel);
        var stopped = new TrainingRecipe(Config(interrupted, 6, 2, 1, lora: true), TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), source, null), cancel: cancel.Token);
        Assert.Equal(3, stopped.Steps);
        Assert.Equal(new[] { "checkpoint-3" }, Directory.GetDirectories(interrupted, "checkpoint-*").Select(Path.GetFileName).ToArray());

        var resumed = new TrainingRecipe(Config(interrupted, 6, 2, 1, lora: true), TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null), Path.Combine(interrupted, "checkpoint-3"));
        var full = new TrainingRecipe(Config(straight, 6, 2, 1, lora: true), TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 2), null));
        Assert.Equal(6, resumed.Steps);
        for (int i = 0; i < 3; i++) Assert.Equal(full.Logs[3 + i].Loss, resumed.Logs[i].Loss);
    }

    [Fact]
    public void SaveTotalLimitKeepsTheNewestCheckpointsAndTheBestByEvalLoss()
    {
        var output = TestPaths.TempDir();
        var checkpointer = new Checkpointer(output, saveTotalLimit: 1);
        var parameter = new TorchSharp.Modules.Parameter(zeros(2));
        var optimizer = new Sgd([new TrainableParameter("w", parameter, Decay: false)], 0);
        var schedule = new LrSchedule(LrSchedulerType.Constant, 1e-3, 0, 4);
        var state = new TrainState { BestEvalLoss = 1.5, BestEvalStep = 2 };
        for (int step = 1; step <= 4; step++)
        {
            state.Step = step;
            // A checkpoint without weights is damaged: the stand-in model is the one parameter.
            checkpointer.Save(state, optimizer, schedule, dir => SharpTune.SafeTensors.SafeTensorsWriter.Save(Path.Combine(dir, "model.safetensors"), [KeyValuePair.Create("w", (Tensor)parameter)]), null);
        }
        Assert.Equal(new[] { "checkpoint-2", "checkpoint-4" }, Directory.GetDirectories(output, "checkpoint-*").Select(Path.GetFileName).Order().ToArray());
        var restored = new TrainState();
        Checkpointer.Restore(Path.Combine(output, "checkpoint-4"), restored, optimizer, _ => { });
        Assert.Equal(2, restored.BestEvalStep);
        Assert.Equal(1.5, restored.BestEvalLoss);
    }

    private sealed class CancellingSource(IBatchSource inner, int cancelAtCall, CancellationTokenSource cancel) : IBatchSource
    {
        private int calls;
        public int BatchesPerEpoch => inner.BatchesPerEpoch;

        public LabeledBatch Batch(int epoch, int index)
        {
            if (++calls == cancelAtCall) cancel.Cancel();
            return inner.Batch(epoch, index);
        }
    }

    [Fact]
    public void LoraTrainingLowersTheLossOnALearnablePattern()
    {
        var rows = ListBatchSource.CountingRows(16, 16, 256, seed: 3);
        var outcome = new TrainingRecipe(Config(TestPaths.TempDir(), 30, 4, 1, lora: true) with { LoraDropout = 0, LearningRate = 3e-2 }, TinyLlama, TextWriter.Null)
            .Train(new SupervisedSetup(new CausalLmObjective(), new ListBatchSource(rows, 4), null));
        double first = outcome.Logs[0].Loss, last = outcome.Logs[^1].Loss;
        Assert.True(first > 5.0, $"first loss {first}");
        Assert.True(last < first * 0.5, $"loss went from {first} to {last}");
    }
}
