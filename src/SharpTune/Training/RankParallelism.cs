using SharpTune.Distributed;
using SharpTune.Modeling;
using SharpTune.Modeling.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// A run's share of the job's ranks: NCCL between the ranks' GPUs (MPI stays the rendezvous), the data-parallel reducer
/// over the trainable parameters and, under ZeRO-3, the parameter shards the model runs group by group through. All
/// null in one process.
/// </summary>
public sealed class RankParallelism(IDeviceCollectives? gpuCollectives, DataParallel? parallel, ParameterShards? shards) : IDisposable
{
    public IDeviceCollectives? GpuCollectives => gpuCollectives;
    public DataParallel? Parallel => parallel;
    public ParameterShards? Shards => shards;

    /// <summary>Several ranks: the reducer with rank 0's starting values everywhere (ZeRO-3: also the shards); nothing in one process.</summary>
    public static RankParallelism Start(ICommunicator communicator, CausalLM model, IReadOnlyList<TrainableParameter> trainable, DistributedSettings settings,
        Device device, bool adapter, bool grpo)
    {
        if (communicator.WorldSize == 1) return new RankParallelism(null, null, null);
        if (grpo)
            throw new InvalidInputException("rl: grpo runs in one process in this build (its rollouts are sampled per process); launch it without mpirun/srun");
        var gpu = device.type == DeviceType.CUDA ? NcclCommunicator.Start(communicator, device, settings.Timeout) : null;
        try
        {
            return Start(communicator, model, trainable.Select(p => (p.Name, p.Parameter)).ToList(), settings, gpu, adapter);
        }
        catch
        {
            gpu?.Dispose();
            throw;
        }
    }

    private static RankParallelism Start(ICommunicator communicator, CausalLM model, List<(string, Parameter)> named, DistributedSettings settings, IDeviceCollectives? gpu, bool adapter)
    {
        if (settings.Stage != ZeroStage.Parameters)
        {
            var data = new DataParallel(communicator, named, settings.Stage, settings.BucketCapMb, new BucketCollectives(communicator, gpu));
            data.BroadcastParameters();
            return new RankParallelism(gpu, data, null);
        }
        var shards = new ParameterShards(communicator, ShardGroups(model, adapter), settings.BucketCapMb);
        ShardedExecution.Enable(model, shards);
        // Full fine-tune: every trainable parameter is sharded; the owner's copy is the one every rank gathers (the
        // ranks loaded the same files, checked by checksum), so nothing is broadcast. LoRA: the adapters are replicated
        // and data-parallel (DDP), rank 0's initialisation broadcast as usual.
        if (!adapter) return new RankParallelism(gpu, new DataParallel(communicator, named, ZeroStage.Parameters, settings.BucketCapMb,
            new BucketCollectives(communicator, gpu), shards.Owners), shards);
        var replicated = new DataParallel(communicator, named, ZeroStage.None, settings.BucketCapMb, new BucketCollectives(communicator, gpu));
        replicated.BroadcastParameters();
        return new RankParallelism(gpu, replicated, shards);
    }

    /// <summary>ZeRO-3: every parameter present on every rank until disposed (a collective: all ranks call it); otherwise nothing.</summary>
    public IDisposable? Materialized(bool values = true)
    {
        if (shards is null) return null;
        shards.MaterializeAll(values);
        return new Release(shards.ReleaseAll);
    }

    /// <summary>The console lines that say how the ranks share the run (none in one process).</summary>
    public IEnumerable<string> Describe(int worldSize, int globalBatchRows, long parameterCount)
    {
        if (parallel is not null)
            yield return $"data parallel: {worldSize} ranks, {DescribeStage(shards is null ? parallel.Stage : ZeroStage.Parameters)}, global batch {globalBatchRows} rows, gradients over {gpuCollectives?.Description ?? "MPI (host memory)"}";
        if (shards is not null)
        {
            var (ownedQuantized, totalQuantized) = shards.QuantizedBytes;
            string quantized = totalQuantized == 0 ? "" : $" and {ownedQuantized:N0} of {totalQuantized:N0} bytes of quantized base";
            yield return $"ZeRO-3: this rank keeps {shards.OwnedElements:N0} of {parameterCount:N0} parameters{quantized} between uses; each group is gathered for its forward and again, recomputed, for its backward";
        }
    }

    public void Dispose() => gpuCollectives?.Dispose();

    /// <summary>
    /// ZeRO-3's parameter groups in the model's order: the embedding, each decoder layer, the final norm, lm_head (when
    /// untied). Sharded are all parameters of a full fine-tune and the frozen ones under LoRA (its adapters and
    /// modules_to_save stay replicated), and under QLoRA each quantized weight's stored tensors, named as bitsandbytes
    /// names them (q_proj.weight, q_proj.absmax, …). A parameter or quantized weight outside these groups is refused
    /// rather than silently replicated.
    /// </summary>
    private static List<(nn.Module, IReadOnlyList<(string, Tensor)>)> ShardGroups(CausalLM model, bool adapter)
    {
        var modules = new List<(nn.Module Module, string Prefix)> { (model.Model.EmbedTokens, "model.embed_tokens.") };
        modules.AddRange(model.Model.Layers.Select((layer, i) => ((nn.Module)layer, $"model.layers.{i}.")));
        modules.Add((model.Model.FinalNorm, "model.norm."));
        if (model.LmHead is { } head) modules.Add((head, "lm_head."));
        bool Sharded(Parameter p) => !adapter || !p.requires_grad;
        var groups = modules.Select(m => (m.Module, (IReadOnlyList<(string, Tensor)>)m.Module.named_parameters()
            .Where(p => Sharded(p.parameter)).Select(p => (m.Prefix + p.name, (Tensor)p.parameter))
            .Concat(QuantizedTensors(m.Module, m.Prefix)).ToList())).ToList();
        var covered = groups.SelectMany(g => g.Item2.Select(p => p.Item1)).ToHashSet(StringComparer.Ordinal);
        if (model.named_parameters().FirstOrDefault(p => Sharded(p.parameter) && !covered.Contains(p.name)) is { name: { } outside })
            throw new InvalidInputException($"ZeRO-3: parameter {outside} is outside the decoder layers, embedding, final norm and lm_head that this build shards; use ZeRO-2");
        if (QuantizedTensors(model, "").FirstOrDefault(t => !covered.Contains(t.Name)) is { Name: { } quantizedOutside })
            throw new InvalidInputException($"ZeRO-3: quantized weight {quantizedOutside} is outside the decoder layers that this build shards; use ZeRO-2");
        return groups;
    }

    /// <summary>The stored tensors of the module's quantized linear weights, by full name, in a fixed order.</summary>
    private static IEnumerable<(string Name, Tensor Tensor)> QuantizedTensors(nn.Module module, string prefix) =>
        QuantizedLoading.QuantizedLayers(module).SelectMany(q => q.Weight.StoredTensors.OrderBy(t => t.Key, StringComparer.Ordinal)
            .Select(t => ($"{prefix}{q.Name}.{t.Key}", t.Value)));

    private static string DescribeStage(ZeroStage stage) => stage switch
    {
        ZeroStage.None => "DDP (replicated optimizer state)",
        ZeroStage.OptimizerState => "ZeRO-1 (optimizer state sharded)",
        ZeroStage.Gradients => "ZeRO-2 (optimizer state and gradients sharded)",
        _ => "ZeRO-3 (parameters, gradients and optimizer state sharded)",
    };

    private sealed class Release(Action release) : IDisposable
    {
        public void Dispose() => release();
    }
}
