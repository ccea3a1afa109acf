namespace SharpTune.Distributed;

/// <summary>Element types the collectives move (the flat buckets are float32; counts and checksums are int64).</summary>
public enum ElementType { Float32, Float64, Int64 }

public enum ReduceOp { Sum, Max, Min }

/// <summary>
/// Collectives over flat native buffers, the same call on every rank in the same order (MPI's rule). Buffers are host
/// memory: libtorch CPU tensors' own storage, reduced in place without a copy. One process: every call is the identity.
/// </summary>
public interface ICommunicator : IDisposable
{
    int Rank { get; }
    int WorldSize { get; }
    /// <summary>Index of this process among those on its node (picks cuda:LOCAL_RANK).</summary>
    int LocalRank { get; }
    /// <summary>Processes on this node (CPU threads are divided among them).</summary>
    int LocalSize { get; }

    /// <summary>In place: every rank ends with the element-wise reduction over ranks.</summary>
    void AllReduce(nint buffer, long count, ElementType type, ReduceOp op = ReduceOp.Sum);

    /// <summary>
    /// Sums <paramref name="buffer"/> (the concatenation of every rank's part, part r of length counts[r]) over ranks and
    /// leaves rank r's part of the sum at offset Σ counts[&lt;r] of the same buffer; the other parts are left undefined.
    /// </summary>
    void ReduceScatterSum(nint buffer, IReadOnlyList<int> counts, ElementType type);

    /// <summary>In place: rank r's part (at offset Σ counts[&lt;r], length counts[r]) is copied to every rank.</summary>
    void AllGather(nint buffer, IReadOnlyList<int> counts, ElementType type);

    /// <summary>In place: the root's bytes to every rank.</summary>
    void Broadcast(nint buffer, long bytes, int root = 0);

    void Barrier();

    /// <summary>Ends every rank of the job with <paramref name="exitCode"/> (used when this rank fails).</summary>
    void Abort(int exitCode);
}

/// <summary>A run of one process: nothing to exchange.</summary>
public sealed class SingleProcess : ICommunicator
{
    public int Rank => 0;
    public int WorldSize => 1;
    public int LocalRank => 0;
    public int LocalSize => 1;
    public void AllReduce(nint buffer, long count, ElementType type, ReduceOp op = ReduceOp.Sum) { }
    public void ReduceScatterSum(nint buffer, IReadOnlyList<int> counts, ElementType type) { }
    public void AllGather(nint buffer, IReadOnlyList<int> counts, ElementType type) { }
    public void Broadcast(nint buffer, long bytes, int root = 0) { }
    public void Barrier() { }
    public void Abort(int exitCode) => Environment.Exit(exitCode);
    public void Dispose() { }
}

/// <summary>Typed conveniences over <see cref="ICommunicator"/> for small host arrays (counts, checksums, losses).</summary>
public static unsafe class CommunicatorExtensions
{
    public static void AllReduce(this ICommunicator comm, Span<long> values, ReduceOp op = ReduceOp.Sum)
    {
        fixed (long* p = values) comm.AllReduce((nint)p, values.Length, ElementType.Int64, op);
    }

    public static void AllReduce(this ICommunicator comm, Span<double> values, ReduceOp op = ReduceOp.Sum)
    {
        fixed (double* p = values) comm.AllReduce((nint)p, values.Length, ElementType.Float64, op);
    }

    public static long Sum(this ICommunicator comm, long value)
    {
        Span<long> one = [value];
        comm.AllReduce(one);
        return one[0];
    }

    public static double Sum(this ICommunicator comm, double value)
    {
        Span<double> one = [value];
        comm.AllReduce(one);
        return one[0];
    }

    /// <summary>Every rank's value, by rank.</summary>
    public static long[] Gather(this ICommunicator comm, long value)
    {
        var all = new long[comm.WorldSize];
        all[comm.Rank] = value;
        fixed (long* p = all) comm.AllGather((nint)p, Enumerable.Repeat(1, comm.WorldSize).ToArray(), ElementType.Int64);
        return all;
    }

    public static void Broadcast(this ICommunicator comm, byte[] bytes, int root = 0)
    {
        fixed (byte* p = bytes) comm.Broadcast((nint)p, bytes.Length, root);
    }
}
