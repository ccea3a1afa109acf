using static TorchSharp.torch;

namespace SharpTune.Distributed;

/// <summary>
/// NCCL collectives on this rank's GPU, set up over the host communicator: rank 0's ncclUniqueId is broadcast over MPI
/// and every rank joins with ncclCommInitRank; MPI stays the launcher, the rendezvous and the channel for host values.
/// Streams: every call is enqueued on CUDA's legacy default stream (0), which is libtorch's current stream under
/// TorchSharp (it exposes no stream API), so a collective runs after the kernels that filled its buffer and before those
/// that read it. Each call then synchronises the device under the ddp_timeout watchdog: NCCL kernels waiting for a dead
/// peer would otherwise spin for ever, and the wait is where the timeout can see it.
/// </summary>
public sealed class NcclCommunicator : IDeviceCollectives
{
    private readonly NcclLibrary nccl;
    private readonly nint comm;
    private readonly int rank, worldSize;
    private readonly CollectiveWatchdog watchdog;
    private const nint DefaultStream = 0;
    private bool disposed;

    public Device Device { get; }
    public string Description => $"NCCL {nccl.VersionText} ({nccl.Path})";

    private NcclCommunicator(NcclLibrary nccl, ICommunicator hostRanks, Device device, TimeSpan timeout)
    {
        this.nccl = nccl;
        Device = device;
        rank = hostRanks.Rank;
        worldSize = hostRanks.WorldSize;
        CudaRuntime.SetDevice(Math.Max(0, device.index));
        var id = NcclUniqueId.Exchange(hostRanks, nccl.GetUniqueId);
        watchdog = new CollectiveWatchdog(rank, timeout);
        try
        {
            // ncclCommInitRank returns once every rank has joined: a rank that never arrives is a timeout, not a hang.
            using (watchdog.Enter("ncclCommInitRank"))
                comm = nccl.CommInitRank(worldSize, id, rank);
        }
        catch
        {
            watchdog.Dispose();
            throw;
        }
    }

    /// <summary>Joins every rank's GPU into one NCCL communicator; all ranks of <paramref name="hostRanks"/> must call it.</summary>
    public static NcclCommunicator Start(ICommunicator hostRanks, Device device, TimeSpan timeout)
    {
        if (device.type != TorchSharp.DeviceType.CUDA) throw new ArgumentException($"NCCL works on CUDA devices; got {device}");
        return new NcclCommunicator(NcclLibrary.Load(NcclLibrary.DefaultCandidates()), hostRanks, device, timeout);
    }

    public void AllReduce(Tensor buffer, ReduceOp op = ReduceOp.Sum)
    {
        var (address, type) = Checked(buffer, "all-reduce");
        Run("all-reduce", () => nccl.AllReduce(address, address, buffer.numel(), type, NcclLibrary.Op(op), comm, DefaultStream));
    }

    public void ReduceScatterSum(Tensor buffer, IReadOnlyList<int> counts)
    {
        var (address, type) = Checked(buffer, "reduce-scatter", counts);
        long size = buffer.element_size();
        var offsets = Offsets(counts);
        Run("reduce-scatter", () =>
        {
            // Equal parts: in place is recvbuff = sendbuff + rank·count, which leaves this rank's sum at its own offset.
            if (counts.All(c => c == counts[0])) nccl.ReduceScatter(address, address + (nint)(offsets[rank] * size), counts[0], type, NcclLibrary.Op(ReduceOp.Sum), comm, DefaultStream);
            else
            {
                // Uneven parts (NCCL has no reduce-scatter-v): one reduce per part to its owner, fused into one group.
                nccl.GroupStart();
                for (int r = 0; r < worldSize; r++)
                {
                    nint part = address + (nint)(offsets[r] * size);
                    nccl.Reduce(part, part, counts[r], type, NcclLibrary.Op(ReduceOp.Sum), r, comm, DefaultStream);
                }
                nccl.GroupEnd(comm);
            }
        });
    }

    public void AllGather(Tensor buffer, IReadOnlyList<int> counts)
    {
        var (address, type) = Checked(buffer, "all-gather", counts);
        long size = buffer.element_size();
        var offsets = Offsets(counts);
        Run("all-gather", () =>
        {
            // Equal parts: in place is sendbuff = recvbuff + rank·count.
            if (counts.All(c => c == counts[0])) nccl.AllGather(address + (nint)(offsets[rank] * size), address, counts[0], type, comm, DefaultStream);
            else
            {
                // Uneven parts (no all-gather-v): each owner broadcasts its part, fused into one group.
                nccl.GroupStart();
                for (int r = 0; r < worldSize; r++)
                {
                    nint part = address + (nint)(offsets[r] * size);
                    nccl.Broadcast(part, part, counts[r], type, r, comm, DefaultStream);
                }
                nccl.GroupEnd(comm);
            }
        });
    }

    public void Broadcast(Tensor buffer, int root = 0)
    {
        var (address, type) = Checked(buffer, "broadcast");
        if (root < 0 || root >= worldSize) throw new ArgumentOutOfRangeException(nameof(root), $"root {root} is not a rank of {worldSize}");
        Run("broadcast", () => nccl.Broadcast(address, address, buffer.numel(), type, root, comm, DefaultStream));
    }

    /// <summary>Enqueues the call and waits for the device, under the watchdog.</summary>
    private void Run(string collective, Action call)
    {
        using var _ = watchdog.Enter(collective);
        try { call(); }
        catch (InvalidOperationException e) { throw new InvalidOperationException($"rank {rank}: {collective}: {e.Message}", e); }
        cuda.synchronize(Device);
    }

    private (nint Address, int Type) Checked(Tensor buffer, string collective, IReadOnlyList<int>? counts = null)
    {
        CheckBuffer(buffer, Device, collective);
        if (counts is not null)
        {
            if (counts.Count != worldSize) throw new ArgumentException($"{collective}: {counts.Count} counts for {worldSize} ranks");
            if (counts.Any(c => c < 0)) throw new ArgumentException($"{collective}: negative count");
            if (counts.Sum(c => (long)c) != buffer.numel()) throw new ArgumentException($"{collective}: the counts add up to {counts.Sum(c => (long)c)}, the buffer holds {buffer.numel()} elements");
        }
        return (TensorMemory.Address(buffer), NcclLibrary.DataType(buffer.dtype));
    }

    /// <summary>
    /// NCCL reads and writes device memory of its own GPU only: a host tensor (or one on another GPU, or a strided view)
    /// is refused by name instead of being handed to a kernel that would fault.
    /// </summary>
    public static void CheckBuffer(Tensor buffer, Device device, string collective)
    {
        if (buffer.device_type != TorchSharp.DeviceType.CUDA)
            throw new ArgumentException($"NCCL {collective}: the buffer is a {buffer.device} tensor; NCCL works on CUDA tensors (host values go through the MPI communicator)");
        if (buffer.device.index != Math.Max(0, device.index))
            throw new ArgumentException($"NCCL {collective}: the buffer is on {buffer.device}, this rank's communicator on {device}");
        if (!buffer.is_contiguous()) throw new ArgumentException($"NCCL {collective}: the buffer is not contiguous");
        NcclLibrary.DataType(buffer.dtype);
    }

    private static long[] Offsets(IReadOnlyList<int> counts)
    {
        var offsets = new long[counts.Count];
        for (int r = 1; r < counts.Count; r++) offsets[r] = offsets[r - 1] + counts[r - 1];
        return offsets;
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        watchdog.Dispose();
        nccl.CommDestroy(comm);
    }
}
