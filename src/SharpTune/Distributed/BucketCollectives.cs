using static TorchSharp.torch;

namespace SharpTune.Distributed;

/// <summary>
/// Collectives on flat tensors in GPU memory (NCCL), with the in-place semantics of <see cref="ICommunicator"/>'s: the
/// same call on every rank in the same order; counts[r] is rank r's part at offset Σ counts[&lt;r].
/// </summary>
public interface IDeviceCollectives : IDisposable
{
    /// <summary>The GPU this rank's buffers live on.</summary>
    Device Device { get; }
    /// <summary>The library and version, for the start-up line.</summary>
    string Description { get; }
    void AllReduce(Tensor buffer, ReduceOp op = ReduceOp.Sum);
    void ReduceScatterSum(Tensor buffer, IReadOnlyList<int> counts);
    void AllGather(Tensor buffer, IReadOnlyList<int> counts);
    void Broadcast(Tensor buffer, int root = 0);
}

/// <summary>
/// Where data parallel's flat float32 (or float64) buckets live and which engine reduces them: host buffers through the host
/// communicator (MPI), or — when the model is on a GPU and NCCL is up — buffers on that GPU through NCCL, so gradients
/// never make the round trip through host memory.
/// </summary>
public sealed class BucketCollectives(ICommunicator host, IDeviceCollectives? device = null)
{
    /// <summary>The device to build the buckets on.</summary>
    public Device Device => device?.Device ?? CPU;

    public void ReduceScatterSum(Tensor buffer, IReadOnlyList<int> counts)
    {
        if (device is not null) device.ReduceScatterSum(buffer, counts);
        else TensorMemory.With(buffer, (address, _) => host.ReduceScatterSum(address, counts, ElementTypeOf(buffer)));
    }

    public void AllGather(Tensor buffer, IReadOnlyList<int> counts)
    {
        if (device is not null) device.AllGather(buffer, counts);
        else TensorMemory.With(buffer, (address, _) => host.AllGather(address, counts, ElementTypeOf(buffer)));
    }

    private static ElementType ElementTypeOf(Tensor buffer) => buffer.dtype switch
    {
        ScalarType.Float32 => ElementType.Float32,
        ScalarType.Float64 => ElementType.Float64,
        _ => throw new ArgumentException($"host buckets are float32 or float64, not {buffer.dtype}", nameof(buffer)),
    };

    public void Broadcast(Tensor buffer, int root = 0)
    {
        if (device is not null) device.Broadcast(buffer, root);
        else TensorMemory.With(buffer, (address, count) => host.Broadcast(address, count * buffer.element_size(), root));
    }
}
