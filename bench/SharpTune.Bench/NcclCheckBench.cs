using SharpTune.Config;
using SharpTune.Distributed;
using SharpTune.Modeling;
using SharpTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Issue #15's GPU check (bench/gpu/nccl_check.sh runs it): NCCL at world size 1 on one GPU — every collective on
/// float32/bf16/fp16/float64/int64 buffers leaves them as they were, a host tensor is refused — then the data-parallel
/// code path on CUDA (DataParallel over NCCL buckets: broadcast, gradient reduce-scatter/all-gather, ZeRO-1/2 parameter
/// all-gather) against plain single-GPU steps of the same tiny llama, and offload_optimizer: cpu (state and step on the
/// host) against the same. Prints max abs differences; exit 1 when one exceeds 1e-6.
/// </summary>
public static class NcclCheckBench
{
    public const string Mode = "nccl-check";
    public const string Usage = "nccl-check [device=cuda:0] [steps=4]   NCCL world size 1 + DDP/ZeRO-1/2 and offload_optimizer on CUDA vs plain single-GPU steps";
    private const double Tolerance = 1e-6;

    public static int Run(string[] args)
    {
        var device = new Device(args.Length > 0 ? args[0] : "cuda:0");
        int steps = args.Length > 1 ? int.Parse(args[1]) : 4;
        if (device.type != TorchSharp.DeviceType.CUDA || !cuda.is_available())
        {
            Console.Error.WriteLine($"error: nccl-check needs a CUDA device (cuda available: {cuda.is_available()})");
            return 2;
        }
        using var host = new SingleProcess();
        using var nccl = NcclCommunicator.Start(host, device, TimeSpan.FromSeconds(60));
        Console.WriteLine($"{nccl.Description} on {device}, world size 1");
        bool ok = Collectives(nccl, device);
        var reference = Train(device, steps, null, ZeroStage.None, offload: false);
        foreach (var stage in new[] { ZeroStage.None, ZeroStage.OptimizerState, ZeroStage.Gradients })
            ok &= Report($"DataParallel {stage} over NCCL", reference, Train(device, steps, nccl, stage, offload: false));
        ok &= Report("offload_optimizer: cpu", reference, Train(device, steps, null, ZeroStage.None, offload: true));
        ok &= Report("offload_optimizer: cpu + ZeRO-2 over NCCL", reference, Train(device, steps, nccl, ZeroStage.Gradients, offload: true));
        foreach (var t in reference.Values) t.Dispose();
        Console.WriteLine(ok ? "nccl-check: all within 1e-6" : "nccl-check: FAILED");
        return ok ? 0 : 1;
    }

    private static bool Collectives(NcclCommunicator nccl, Device device)
    {
        bool ok = true;
        foreach (var type in new[] { ScalarType.Float32, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Float64, ScalarType.Int64 })
        {
            using var scope = NewDisposeScope();
            var expected = arange(1000, type, device);
            var buffer = expected.clone();
            nccl.AllReduce(buffer);
            nccl.ReduceScatterSum(buffer, [1000]);
            nccl.AllGather(buffer, [1000]);
            nccl.Broadcast(buffer);
            bool same = buffer.equal(expected).item<bool>();
            Console.WriteLine($"  collectives {type,-9}: {(same ? "unchanged (ok)" : "CHANGED")}");
            ok &= same;
        }
        try
        {
            using var onHost = zeros(4);
            nccl.AllReduce(onHost);
            Console.WriteLine("  host tensor: NOT refused");
            ok = false;
        }
        catch (ArgumentException e)
        {
            Console.WriteLine($"  host tensor refused: {e.Message}");
        }
        return ok;
    }

    /// <summary>A few AdamW steps of the tiny llama on fixed tokens; DataParallel over NCCL when given.</summary>
    private static Dictionary<string, Tensor> Train(Device device, int steps, NcclCommunicator? nccl, ZeroStage stage, bool offload)
    {
        var config = ModelFamilies.ParseConfig(new Llama().Presets["tiny"], "llama tiny preset");
        using var model = new CausalLM(config, ScalarType.Float32);
        RandomWeights.Initialize(model, 1);
        model.to(device);
        var trainable = model.named_parameters().Select(p => new TrainableParameter(p.name, p.parameter, TrainableParameter.DecayApplies(p.name))).ToList();
        var parallel = nccl is null ? null : new DataParallel(new SingleProcess(), trainable.Select(p => (p.Name, p.Parameter)).ToList(), stage, 0.01, new BucketCollectives(new SingleProcess(), nccl));
        parallel?.BroadcastParameters();
        var owned = parallel?.OwnedNames;
        var optimizer = Optimizer.Create(OptimizerType.AdamwTorch, owned is null ? trainable : trainable.Where(p => owned.Contains(p.Name)).ToList(), 0.01, 0.9, 0.999, 1e-8, stateDevice: offload ? CPU : null);
        var generator = new Generator(7, CPU);
        var ids = randint(3, config.VocabSize, [2, 32], dtype: ScalarType.Int64, generator: generator).to(device);
        for (int step = 1; step <= steps; step++)
        {
            using var scope = NewDisposeScope();
            var logits = model.Forward(new ForwardBatch(ids));
            long t = ids.shape[1];
            var loss = nn.functional.cross_entropy(logits.narrow(1, 0, t - 1).reshape(-1, logits.shape[^1]), ids.narrow(1, 1, t - 1).reshape(-1));
            loss.backward();
            parallel?.ReduceGradients();
            optimizer.Step(1e-3);
            optimizer.ZeroGrad();
            parallel?.AfterStep();
        }
        return model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().cpu().clone());
    }

    private static bool Report(string what, Dictionary<string, Tensor> reference, Dictionary<string, Tensor> result)
    {
        double worst = reference.Max(kv => (kv.Value - result[kv.Key]).abs().max().item<float>());
        foreach (var t in result.Values) t.Dispose();
        Console.WriteLine($"  {what,-42} max abs diff {worst:E2} {(worst <= Tolerance ? "(ok)" : "(FAILED)")}");
        return worst <= Tolerance;
    }
}
