using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SharpTune.Distributed;
using static TorchSharp.torch;

namespace SharpTune.Tests.Distributed;

/// <summary>
/// The NCCL binding's argument handling, which needs no GPU: the unique id and its exchange over the host communicator,
/// dtype and reduction mapping, result-code messages, refusing tensors NCCL cannot read, where the library is searched
/// and the error when it is absent, and device addresses of tensor views. The collectives themselves run on the GPU
/// machine (bench/gpu/nccl_check.sh).
/// </summary>
public sealed class NcclBindingTests
{
    [Fact]
    public void UniqueIdIs128OpaqueBytes()
    {
        Assert.Equal(128, NcclUniqueId.Bytes);
        Assert.Equal(128, Unsafe.SizeOf<NcclUniqueId>());
        Assert.Equal(128, Marshal.SizeOf<NcclUniqueId>());
        var id = default(NcclUniqueId);
        id.AsSpan()[127] = 9;
        Assert.Equal(128, id.AsSpan().Length);
        Assert.Equal(9, id.AsSpan()[127]);
    }

    [Fact]
    public void RankZeroCreatesTheIdAndEveryOtherRankReceivesItsBytes()
    {
        var rootId = default(NcclUniqueId);
        for (int i = 0; i < NcclUniqueId.Bytes; i++) rootId.AsSpan()[i] = (byte)(i * 7 + 3);

        var root = new BroadcastRecorder(rank: 0, worldSize: 3, rootBytes: null);
        int created = 0;
        var onRoot = NcclUniqueId.Exchange(root, () => { created++; return rootId; });
        Assert.Equal(1, created);
        Assert.Equal((128L, 0), (root.Bytes, root.Root));
        Assert.Equal(rootId.AsSpan().ToArray(), root.Sent);
        Assert.Equal(rootId.AsSpan().ToArray(), onRoot.AsSpan().ToArray());

        var other = new BroadcastRecorder(rank: 2, worldSize: 3, rootBytes: rootId.AsSpan().ToArray());
        var received = NcclUniqueId.Exchange(other, () => throw new InvalidOperationException("only rank 0 creates the id"));
        Assert.Equal((128L, 0), (other.Bytes, other.Root));
        Assert.Equal(rootId.AsSpan().ToArray(), received.AsSpan().ToArray());
    }

    /// <summary>A host communicator whose broadcast delivers the root's bytes (given) or records what the root sent.</summary>
    private sealed class BroadcastRecorder(int rank, int worldSize, byte[]? rootBytes) : ICommunicator
    {
        public long Bytes { get; private set; } = -1;
        public int Root { get; private set; } = -1;
        public byte[] Sent { get; private set; } = [];
        public int Rank => rank;
        public int WorldSize => worldSize;
        public int LocalRank => rank;
        public int LocalSize => worldSize;

        public void Broadcast(nint buffer, long bytes, int root = 0)
        {
            (Bytes, Root) = (bytes, root);
            if (rootBytes is null)
            {
                Sent = new byte[bytes];
                Marshal.Copy(buffer, Sent, 0, (int)bytes);
            }
            else Marshal.Copy(rootBytes, 0, buffer, (int)bytes);
        }

        public void AllReduce(nint buffer, long count, ElementType type, ReduceOp op = ReduceOp.Sum) => throw new NotSupportedException();
        public void ReduceScatterSum(nint buffer, IReadOnlyList<int> counts, ElementType type) => throw new NotSupportedException();
        public void AllGather(nint buffer, IReadOnlyList<int> counts, ElementType type) => throw new NotSupportedException();
        public void Barrier() => throw new NotSupportedException();
        public void Abort(int exitCode) => throw new NotSupportedException();
        public void Dispose() { }
    }

    [Fact]
    public void DtypesAndReductionsMapToNcclsEnums()
    {
        // nccl.h: ncclInt8 0, ncclUint8 1, ncclInt32 2, ncclInt64 4, ncclFloat16 6, ncclFloat32 7, ncclFloat64 8, ncclBfloat16 9.
        Assert.Equal([0, 1, 2, 4, 6, 7, 8, 9],
            new[] { ScalarType.Int8, ScalarType.Byte, ScalarType.Int32, ScalarType.Int64, ScalarType.Float16, ScalarType.Float32, ScalarType.Float64, ScalarType.BFloat16 }.Select(NcclLibrary.DataType));
        foreach (var unsupported in new[] { ScalarType.Bool, ScalarType.Int16, ScalarType.ComplexFloat32 })
            Assert.Contains(unsupported.ToString(), Assert.Throws<ArgumentException>(() => NcclLibrary.DataType(unsupported)).Message);
        // ncclSum 0, ncclMax 2, ncclMin 3.
        Assert.Equal([0, 2, 3], new[] { ReduceOp.Sum, ReduceOp.Max, ReduceOp.Min }.Select(NcclLibrary.Op));
    }

    [Fact]
    public void ResultCodesBecomeOneLineMessagesNamingTheCallAndTheCause()
    {
        var names = Enumerable.Range(1, 7).Select(NcclLibrary.ResultName).ToList();
        Assert.Equal(7, names.Distinct().Count());
        Assert.StartsWith("ncclUnhandledCudaError", names[0]);
        Assert.StartsWith("ncclRemoteError", names[5]);
        Assert.Contains("unknown ncclResult_t 42", NcclLibrary.ResultName(42));
        var message = NcclLibrary.ErrorMessage("ncclAllReduce", 6, "socket closed by peer\nrank 1");
        Assert.Contains("ncclAllReduce failed: ncclRemoteError", message);
        Assert.Contains("another rank failed", message);
        Assert.Contains("socket closed by peer rank 1", message);
        Assert.DoesNotContain('\n', message);
        Assert.DoesNotContain(": ;", NcclLibrary.ErrorMessage("ncclGroupEnd", 5, "  "));
    }

    [Fact]
    public void TensorsNcclCannotReadAreRefusedByName()
    {
        var gpu = new Device("cuda:0");
        using var host = zeros(8);
        var e = Assert.Throws<ArgumentException>(() => NcclCommunicator.CheckBuffer(host, gpu, "all-reduce"));
        Assert.Contains("cpu", e.Message);
        Assert.Contains("CUDA tensors", e.Message);
        Assert.Throws<ArgumentException>(() => NcclCommunicator.Start(new SingleProcess(), CPU, TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void AnAbsentLibraryIsOneErrorNamingEveryPlaceSearched()
    {
        var dir = TestPaths.TempDir();
        string[] candidates = [Path.Combine(dir, "torch", "lib", "libnccl.so.2"), "libnccl-not-installed.so.2"];
        var e = Assert.Throws<InvalidInputException>(() => NcclLibrary.Load(candidates));
        foreach (var c in candidates) Assert.Contains(c, e.Message);
        Assert.Contains("SHARPTUNE_LIBNCCL", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        // A library that loads but is not NCCL: named, not a crash on the first call.
        var notNccl = Assert.Throws<InvalidInputException>(() => NcclLibrary.Load(["libc.so.6"]));
        Assert.Contains("libc.so.6: no export ncclGetVersion", notNccl.Message);
    }

    [Fact]
    public void TheLibraryIsSearchedBesideLibtorchItsNvidiaSiblingsTorchSharpAndTheLoaderPath()
    {
        var root = TestPaths.TempDir();
        var torchLib = Path.Combine(root, "site-packages", "torch", "lib");
        Directory.CreateDirectory(torchLib);
        foreach (var package in new[] { "nccl", "cuda_runtime" }) Directory.CreateDirectory(Path.Combine(root, "site-packages", "nvidia", package, "lib"));
        Directory.CreateDirectory(Path.Combine(root, "site-packages", "nvidia", "no-lib-folder"));
        var app = Path.Combine(root, "app");
        Assert.Equal([
            Path.Combine(torchLib, "libnccl.so.2"),
            Path.Combine(root, "site-packages", "nvidia", "cuda_runtime", "lib", "libnccl.so.2"),
            Path.Combine(root, "site-packages", "nvidia", "nccl", "lib", "libnccl.so.2"),
            Path.Combine(app, "libnccl.so.2"),
            Path.Combine(app, "runtimes", "linux-x64", "native", "libnccl.so.2"),
            "libnccl.so.2"], NativeSearch.Candidates(["libnccl.so.2"], null, torchLib, app));
        Assert.Equal(["/opt/nccl/libnccl.so.2"], NativeSearch.Candidates(["libnccl.so.2"], "/opt/nccl/libnccl.so.2", torchLib, app));
        Assert.Equal([Path.Combine(app, "libnccl.so.2"), Path.Combine(app, "runtimes", "linux-x64", "native", "libnccl.so.2"), "libnccl.so.2"],
            NativeSearch.Candidates(["libnccl.so.2"], "", null, app));
    }

    [Fact]
    public void TheAddressOfAViewIsItsStoragePlusItsOffset()
    {
        using var whole = arange(16, ScalarType.Float32);
        using var view = whole.narrow(0, 5, 6);
        using var half = arange(8, ScalarType.BFloat16).narrow(0, 3, 2);
        // TensorMemory.With pins Tensor.bytes, the host route MPI uses: both must name the same first element.
        nint Pinned(Tensor t)
        {
            nint address = 0;
            TensorMemory.With(t, (a, _) => address = a);
            return address;
        }
        Assert.Equal(Pinned(whole), TensorMemory.Address(whole));
        Assert.Equal(Pinned(whole) + 5 * sizeof(float), TensorMemory.Address(view));
        Assert.Equal(Pinned(view), TensorMemory.Address(view));
        Assert.Equal(Pinned(half), TensorMemory.Address(half));
        using var strided = whole.view(4, 4).t();
        Assert.Throws<ArgumentException>(() => TensorMemory.Address(strided));
    }
}
