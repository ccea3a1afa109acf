using static TorchSharp.torch;

namespace SharpTune.Distributed;

/// <summary>The host address of a contiguous CPU tensor's storage, for collectives that work in place on it.</summary>
internal static unsafe class TensorMemory
{
    /// <summary>Runs <paramref name="use"/> with the address and element count of <paramref name="tensor"/> (no copy).</summary>
    public static void With(Tensor tensor, Action<nint, long> use)
    {
        if (tensor.device_type != TorchSharp.DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("collective buffers are contiguous host tensors");
        // Tensor.bytes is a span over libtorch's own storage for CPU tensors: MPI reads and writes it directly.
        fixed (byte* p = tensor.bytes) use((nint)p, tensor.numel());
    }
}
