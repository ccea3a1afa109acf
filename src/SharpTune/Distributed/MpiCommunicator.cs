using System.Runtime.InteropServices;

namespace SharpTune.Distributed;

/// <summary>
/// <see cref="ICommunicator"/> over MPI_COMM_WORLD. Every collective runs under a <see cref="CollectiveWatchdog"/>: a
/// collective that has not completed within ddp_timeout (a peer crashed, was killed or hangs) ends this rank with an
/// error instead of waiting for ever.
/// </summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private readonly MpiLibrary mpi;
    private readonly CollectiveWatchdog watchdog;
    private bool disposed;

    public int Rank { get; }
    public int WorldSize { get; }
    public int LocalRank { get; }
    public int LocalSize { get; }
    /// <summary>libmpi's file name and flavour, for the start-up line.</summary>
    public string Description => $"{(mpi.IsOpenMpi ? "OpenMPI" : "MPICH")} ({mpi.Path})";

    private MpiCommunicator(MpiLibrary mpi, LaunchEnvironment launch, TimeSpan timeout)
    {
        this.mpi = mpi;
        if (!mpi.Initialized) Check(mpi.Init(), "MPI_Init");
        Check(mpi.CommRank(mpi.CommWorld, out var rank), "MPI_Comm_rank");
        Check(mpi.CommSize(mpi.CommWorld, out var size), "MPI_Comm_size");
        Rank = rank;
        WorldSize = size;
        // MPI has no portable local rank before MPI-3 shared-memory splits; the launcher's variables carry it.
        LocalRank = launch.LocalRank;
        LocalSize = Math.Max(1, launch.LocalSize);
        watchdog = new CollectiveWatchdog(rank, timeout);
    }

    /// <summary>Starts MPI for a process launched by mpirun/srun; null with the reason where libmpi cannot be loaded.</summary>
    public static MpiCommunicator? TryStart(LaunchEnvironment launch, TimeSpan timeout, out string reason)
    {
        var library = MpiLibrary.TryLoad(out reason);
        return library is null ? null : new MpiCommunicator(library, launch, timeout);
    }

    public void AllReduce(nint buffer, long count, ElementType type, ReduceOp op = ReduceOp.Sum)
    {
        long elementSize = SizeOf(type);
        using var _ = watchdog.Enter("all-reduce");
        for (long done = 0; done < count; done += int.MaxValue)
        {
            int n = (int)Math.Min(int.MaxValue, count - done);
            Check(mpi.Allreduce(mpi.InPlace, buffer + (nint)(done * elementSize), n, mpi.TypeHandle(type), mpi.OpHandle(op), mpi.CommWorld), "MPI_Allreduce");
        }
    }

    public void ReduceScatterSum(nint buffer, IReadOnlyList<int> counts, ElementType type)
    {
        CheckCounts(counts);
        var countArray = counts.ToArray();
        using var _ = watchdog.Enter("reduce-scatter");
        fixed (int* c = countArray)
            Check(mpi.ReduceScatter(mpi.InPlace, buffer, c, mpi.TypeHandle(type), mpi.OpHandle(ReduceOp.Sum), mpi.CommWorld), "MPI_Reduce_scatter");
        // In place, MPI leaves this rank's block at the start of the buffer; move it to its own offset.
        long offset = countArray.Take(Rank).Sum(x => (long)x) * SizeOf(type);
        if (offset > 0) Buffer.MemoryCopy((void*)buffer, (void*)(buffer + (nint)offset), countArray[Rank] * SizeOf(type), countArray[Rank] * SizeOf(type));
    }

    public void AllGather(nint buffer, IReadOnlyList<int> counts, ElementType type)
    {
        CheckCounts(counts);
        var countArray = counts.ToArray();
        var displacements = new int[countArray.Length];
        long running = 0;
        for (int r = 0; r < countArray.Length; r++)
        {
            if (running > int.MaxValue) throw new ArgumentException("all-gather: more than 2^31 elements in one call; split the buffer");
            displacements[r] = (int)running;
            running += countArray[r];
        }
        using var _ = watchdog.Enter("all-gather");
        fixed (int* c = countArray)
        fixed (int* d = displacements)
            Check(mpi.Allgatherv(mpi.InPlace, 0, mpi.TypeHandle(type), buffer, c, d, mpi.TypeHandle(type), mpi.CommWorld), "MPI_Allgatherv");
    }

    public void Broadcast(nint buffer, long bytes, int root = 0)
    {
        using var _ = watchdog.Enter("broadcast");
        for (long done = 0; done < bytes; done += int.MaxValue)
            Check(mpi.Bcast(buffer + (nint)done, (int)Math.Min(int.MaxValue, bytes - done), mpi.ByteType, root, mpi.CommWorld), "MPI_Bcast");
    }

    public void Barrier()
    {
        using var _ = watchdog.Enter("barrier");
        Check(mpi.Barrier(mpi.CommWorld), "MPI_Barrier");
    }

    public void Abort(int exitCode)
    {
        Console.Error.Flush();
        mpi.Abort(mpi.CommWorld, exitCode);
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        watchdog.Dispose();
        if (mpi.Initialized && !mpi.Finalized) mpi.Finalize();
    }

    private void CheckCounts(IReadOnlyList<int> counts)
    {
        if (counts.Count != WorldSize) throw new ArgumentException($"{counts.Count} counts for {WorldSize} ranks");
        if (counts.Any(c => c < 0)) throw new ArgumentException("negative count");
    }

    internal static int SizeOf(ElementType type) => type switch
    {
        ElementType.Float32 => 4,
        ElementType.Float64 => 8,
        ElementType.Int64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    private void Check(int rc, string call)
    {
        // MPI's default error handler aborts the job on failure, so a non-zero code here is rare: report it all the same.
        if (rc != 0) throw new InvalidOperationException($"rank {Rank}: {call} failed with MPI error code {rc}");
    }
}

/// <summary>
/// Ends this process when a collective waits longer than the timeout. MPI's blocking calls cannot be cancelled, and a
/// peer that died without the launcher noticing (or that hangs) would otherwise leave every other rank waiting for ever.
/// </summary>
internal sealed class CollectiveWatchdog : IDisposable
{
    public const int TimeoutExitCode = 124;
    private readonly int rank;
    private readonly TimeSpan timeout;
    private readonly Thread thread;
    private readonly ManualResetEventSlim stop = new();
    private long startedTicks;   // 0: no collective in progress
    private string current = "";

    public CollectiveWatchdog(int rank, TimeSpan timeout)
    {
        this.rank = rank;
        this.timeout = timeout;
        thread = new Thread(Watch) { IsBackground = true, Name = "collective watchdog" };
        thread.Start();
    }

    public Scope Enter(string collective)
    {
        current = collective;
        Interlocked.Exchange(ref startedTicks, Environment.TickCount64);
        return new Scope(this);
    }

    private void Watch()
    {
        var poll = TimeSpan.FromMilliseconds(Math.Clamp(timeout.TotalMilliseconds / 10, 50, 1000));
        while (!stop.Wait(poll))
        {
            long started = Interlocked.Read(ref startedTicks);
            if (started == 0 || Environment.TickCount64 - started < timeout.TotalMilliseconds) continue;
            Console.Out.Flush();
            Console.Error.WriteLine($"rank {rank}: error: {current} did not complete within ddp_timeout {timeout.TotalSeconds:0.#} s: another rank failed or stopped responding; stopping this rank");
            Console.Error.Flush();
            // _exit: the main thread is blocked inside MPI, so neither managed shutdown nor MPI_Finalize could complete.
            Exit(TimeoutExitCode);
        }
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void Exit(int status);

    public void Dispose()
    {
        stop.Set();
        thread.Join();
        stop.Dispose();
    }

    public readonly struct Scope(CollectiveWatchdog owner) : IDisposable
    {
        public void Dispose() => Interlocked.Exchange(ref owner.startedTicks, 0);
    }
}
