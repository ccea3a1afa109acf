using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace SharpTune.Distributed;

/// <summary>The address of a contiguous tensor's elements, for collectives that work in place on it.</summary>
internal static unsafe partial class TensorMemory
{
    /// <summary>Runs <paramref name="use"/> with the address and element count of <paramref name="tensor"/> (no copy).</summary>
    public static void With(Tensor tensor, Action<nint, long> use)
    {
        if (tensor.device_type != TorchSharp.DeviceType.CPU || !tensor.is_contiguous())
            throw new ArgumentException("collective buffers are contiguous host tensors");
        // Tensor.bytes is a span over libtorch's own storage for CPU tensors: MPI reads and writes it directly.
        fixed (byte* p = tensor.bytes) use((nint)p, tensor.numel());
    }

    /// <summary>
    /// The address of the first element of a contiguous tensor on any device (a CUDA device pointer for CUDA tensors):
    /// its storage's base plus the view's offset. TorchSharp's public Storage&lt;T&gt; has no bf16/fp16 element type, so
    /// this asks LibTorchSharp's storage export directly.
    /// </summary>
    public static nint Address(Tensor tensor)
    {
        if (!tensor.is_contiguous()) throw new ArgumentException("collective buffers are contiguous tensors");
        return StorageBase(tensor.Handle) + (nint)(tensor.storage_offset() * tensor.element_size());
    }

    [LibraryImport("LibTorchSharp", EntryPoint = "THSStorage_data_ptr")]
    private static partial nint StorageBase(nint tensor);
}
