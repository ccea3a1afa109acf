using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace SharpTune.Distributed;

/// <summary>ncclUniqueId: the 128 opaque bytes (NCCL_UNIQUE_ID_BYTES) rank 0 creates and every rank passes to ncclCommInitRank.</summary>
[StructLayout(LayoutKind.Sequential, Size = Bytes)]
public unsafe struct NcclUniqueId
{
    public const int Bytes = 128;
    private fixed byte value[Bytes];

    public Span<byte> AsSpan() => MemoryMarshal.CreateSpan(ref value[0], Bytes);

    /// <summary>
    /// Rank 0's id on every rank: rank 0 calls <paramref name="createOnRoot"/> (ncclGetUniqueId) and broadcasts the bytes
    /// over the host communicator (MPI), which is how NCCL expects its rendezvous to be carried.
    /// </summary>
    public static NcclUniqueId Exchange(ICommunicator hostRanks, Func<NcclUniqueId> createOnRoot)
    {
        var id = hostRanks.Rank == 0 ? createOnRoot() : default;
        hostRanks.Broadcast((nint)Unsafe.AsPointer(ref id), Bytes, root: 0);
        return id;
    }
}

/// <summary>
/// The NCCL C API (libnccl.so.2, 2.x) through function pointers. Searched beside libtorch (a PyTorch install keeps it in
/// site-packages/nvidia/nccl/lib), beside TorchSharp's natives and on the loader path; SHARPTUNE_LIBNCCL names another.
/// </summary>
internal sealed unsafe class NcclLibrary
{
    public const string FileName = "libnccl.so.2";

    public string Path { get; }
    /// <summary>NCCL's version code (major·10000 + minor·100 + patch since 2.9).</summary>
    public int Version { get; }

    private readonly delegate* unmanaged<int*, int> getVersion;
    private readonly delegate* unmanaged<NcclUniqueId*, int> getUniqueId;
    private readonly delegate* unmanaged<nint*, int, NcclUniqueId, int, int> commInitRank;
    private readonly delegate* unmanaged<nint, int> commDestroy, commAbort;
    private readonly delegate* unmanaged<int, nint> getErrorString;
    private readonly delegate* unmanaged<nint, nint> getLastError;   // 2.13+; null before
    private readonly delegate* unmanaged<int> groupStart, groupEnd;
    private readonly delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> allReduce, reduceScatter;
    private readonly delegate* unmanaged<nint, nint, nuint, int, nint, nint, int> allGather;
    private readonly delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int> broadcast;
    private readonly delegate* unmanaged<nint, nint, nuint, int, int, int, nint, nint, int> reduce;

    private NcclLibrary(string path, nint handle)
    {
        Path = path;
        nint Export(string name) => NativeLibrary.TryGetExport(handle, name, out var address) ? address
            : throw new InvalidInputException($"{path}: no export {name}; not an NCCL 2 library (set SHARPTUNE_LIBNCCL to libnccl.so.2)");
        getVersion = (delegate* unmanaged<int*, int>)Export("ncclGetVersion");
        getUniqueId = (delegate* unmanaged<NcclUniqueId*, int>)Export("ncclGetUniqueId");
        commInitRank = (delegate* unmanaged<nint*, int, NcclUniqueId, int, int>)Export("ncclCommInitRank");
        commDestroy = (delegate* unmanaged<nint, int>)Export("ncclCommDestroy");
        commAbort = (delegate* unmanaged<nint, int>)Export("ncclCommAbort");
        getErrorString = (delegate* unmanaged<int, nint>)Export("ncclGetErrorString");
        getLastError = NativeLibrary.TryGetExport(handle, "ncclGetLastError", out var last) ? (delegate* unmanaged<nint, nint>)last : null;
        groupStart = (delegate* unmanaged<int>)Export("ncclGroupStart");
        groupEnd = (delegate* unmanaged<int>)Export("ncclGroupEnd");
        allReduce = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Export("ncclAllReduce");
        reduceScatter = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Export("ncclReduceScatter");
        allGather = (delegate* unmanaged<nint, nint, nuint, int, nint, nint, int>)Export("ncclAllGather");
        broadcast = (delegate* unmanaged<nint, nint, nuint, int, int, nint, nint, int>)Export("ncclBroadcast");
        reduce = (delegate* unmanaged<nint, nint, nuint, int, int, int, nint, nint, int>)Export("ncclReduce");
        int version;
        Version = getVersion(&version) == 0 ? version : 0;
    }

    /// <summary>Where libnccl.so.2 is looked for in this process (see the class summary).</summary>
    public static IReadOnlyList<string> DefaultCandidates() =>
        NativeSearch.Candidates([FileName], Environment.GetEnvironmentVariable("SHARPTUNE_LIBNCCL"), NativeSearch.LoadedLibtorchDir(), AppContext.BaseDirectory);

    /// <summary>Loads the first candidate, or throws one line naming every place searched.</summary>
    public static NcclLibrary Load(IReadOnlyList<string> candidates)
    {
        var found = NativeSearch.LoadFirst(candidates);
        return found is { } f ? new NcclLibrary(f.Path, f.Handle)
            : throw new InvalidInputException($"NCCL is needed for CUDA tensors on several ranks but {FileName} was not found (searched {string.Join(", ", candidates)}); " +
                                              "install NCCL 2 (a PyTorch CUDA install has it under site-packages/nvidia/nccl/lib) or set SHARPTUNE_LIBNCCL");
    }

    public string VersionText => Version >= 10000 ? $"{Version / 10000}.{Version / 100 % 100}.{Version % 100}" : Version > 0 ? $"{Version / 1000}.{Version / 100 % 10}.{Version % 100}" : "unknown";

    public NcclUniqueId GetUniqueId()
    {
        NcclUniqueId id;
        Check(getUniqueId(&id), "ncclGetUniqueId", 0);
        return id;
    }

    public nint CommInitRank(int worldSize, NcclUniqueId id, int rank)
    {
        nint comm;
        Check(commInitRank(&comm, worldSize, id, rank), "ncclCommInitRank", 0);
        return comm;
    }

    public void CommDestroy(nint comm) => Check(commDestroy(comm), "ncclCommDestroy", comm);

    /// <summary>Ends the communicator without waiting for outstanding work (a failed peer).</summary>
    public void CommAbort(nint comm) => commAbort(comm);

    public void GroupStart() => Check(groupStart(), "ncclGroupStart", 0);
    public void GroupEnd(nint comm) => Check(groupEnd(), "ncclGroupEnd", comm);

    public void AllReduce(nint send, nint receive, long count, int type, int op, nint comm, nint stream) =>
        Check(allReduce(send, receive, (nuint)count, type, op, comm, stream), "ncclAllReduce", comm);

    public void ReduceScatter(nint send, nint receive, long receiveCount, int type, int op, nint comm, nint stream) =>
        Check(reduceScatter(send, receive, (nuint)receiveCount, type, op, comm, stream), "ncclReduceScatter", comm);

    public void AllGather(nint send, nint receive, long sendCount, int type, nint comm, nint stream) =>
        Check(allGather(send, receive, (nuint)sendCount, type, comm, stream), "ncclAllGather", comm);

    public void Broadcast(nint send, nint receive, long count, int type, int root, nint comm, nint stream) =>
        Check(broadcast(send, receive, (nuint)count, type, root, comm, stream), "ncclBroadcast", comm);

    public void Reduce(nint send, nint receive, long count, int type, int op, int root, nint comm, nint stream) =>
        Check(reduce(send, receive, (nuint)count, type, op, root, comm, stream), "ncclReduce", comm);

    private void Check(int result, string call, nint comm)
    {
        if (result == 0) return;
        string detail = getLastError is null ? "" : Marshal.PtrToStringAnsi(getLastError(comm)) ?? "";
        string text = Marshal.PtrToStringAnsi(getErrorString(result)) ?? "";
        throw new InvalidOperationException(ErrorMessage(call, result, string.IsNullOrWhiteSpace(detail) ? text : detail));
    }

    // ---- the mappings below need no library (unit-tested on the CPU) ----

    /// <summary>ncclResult_t values (nccl.h) with what each means for the user.</summary>
    public static string ResultName(int result) => result switch
    {
        0 => "ncclSuccess",
        1 => "ncclUnhandledCudaError (a CUDA call failed)",
        2 => "ncclSystemError (a system call failed: network, shared memory or /dev/shm)",
        3 => "ncclInternalError (an NCCL bug or memory corruption)",
        4 => "ncclInvalidArgument (a bad pointer, count or dtype)",
        5 => "ncclInvalidUsage (the ranks called NCCL differently, or two ranks share one GPU)",
        6 => "ncclRemoteError (another rank failed or the network connection broke)",
        7 => "ncclInProgress (a non-blocking operation is still running)",
        _ => $"unknown ncclResult_t {result}",
    };

    /// <summary>One line: the call, the result's name and meaning, and NCCL's own detail when it gave one.</summary>
    public static string ErrorMessage(string call, int result, string? detail) =>
        $"{call} failed: {ResultName(result)}{(string.IsNullOrWhiteSpace(detail) ? "" : $": {detail.Trim().ReplaceLineEndings(" ")}")}; NCCL_DEBUG=WARN shows more";

    /// <summary>ncclDataType_t of a tensor dtype; bool, complex and the 16-bit integers have none and are refused by name.</summary>
    public static int DataType(ScalarType type) => type switch
    {
        ScalarType.Int8 => 0,
        ScalarType.Byte => 1,
        ScalarType.Int32 => 2,
        ScalarType.Int64 => 4,
        ScalarType.Float16 => 6,
        ScalarType.Float32 => 7,
        ScalarType.Float64 => 8,
        ScalarType.BFloat16 => 9,
        _ => throw new ArgumentException($"NCCL has no data type for {type}; allowed: Int8, Byte, Int32, Int64, Float16, Float32, Float64, BFloat16"),
    };

    /// <summary>ncclRedOp_t of a reduction.</summary>
    public static int Op(ReduceOp op) => op switch
    {
        ReduceOp.Sum => 0,
        ReduceOp.Max => 2,
        ReduceOp.Min => 3,
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };
}
