using System.Runtime.InteropServices;

namespace SharpTune.Distributed;

/// <summary>
/// The one CUDA runtime call TorchSharp does not expose: cudaSetDevice. ncclCommInitRank binds the communicator to the
/// calling thread's current device, which libtorch leaves at 0 (it switches devices per kernel with device guards), so
/// rank k must make cuda:k current first or every rank of a node would claim GPU 0. libtorch_cuda has the runtime loaded
/// already; its file name is found the same way as NCCL's.
/// </summary>
internal static unsafe class CudaRuntime
{
    private static readonly string[] FileNames = ["libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0", "libcudart.so"];

    public static void SetDevice(int ordinal)
    {
        var candidates = NativeSearch.Candidates(FileNames, Environment.GetEnvironmentVariable("SHARPTUNE_LIBCUDART"), NativeSearch.LoadedLibtorchDir(), AppContext.BaseDirectory);
        var (path, handle) = NativeSearch.LoadFirst(candidates)
            ?? throw new InvalidInputException($"the CUDA runtime was not found (searched {string.Join(", ", candidates)}); set SHARPTUNE_LIBCUDART to the libcudart.so that libtorch_cuda uses");
        var setDevice = (delegate* unmanaged<int, int>)Export(handle, path, "cudaSetDevice");
        var errorString = (delegate* unmanaged<int, nint>)Export(handle, path, "cudaGetErrorString");
        int rc = setDevice(ordinal);
        if (rc != 0) throw new InvalidOperationException($"cudaSetDevice({ordinal}) failed: {Marshal.PtrToStringAnsi(errorString(rc))} (CUDA error {rc})");
    }

    private static nint Export(nint handle, string path, string name) =>
        NativeLibrary.TryGetExport(handle, name, out var address) ? address : throw new InvalidInputException($"{path}: no export {name}; not a CUDA runtime library");
}
