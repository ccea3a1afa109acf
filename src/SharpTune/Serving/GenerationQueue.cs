using System.Threading.Channels;

namespace SharpTune.Serving;

/// <summary>
/// One model, batches of waiting requests: a single dedicated thread takes every job that is waiting (up to
/// <c>maxBatch</c>) and hands them to <c>runBatch</c> together, so concurrent requests share one decoding loop and the
/// model and tokenizer are never touched from two threads. A burst beyond <c>capacity</c> is refused, not piled up.
/// </summary>
public sealed class GenerationQueue<TJob> : IDisposable
{
    private readonly Channel<TJob> work = Channel.CreateUnbounded<TJob>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Thread worker;
    private readonly int capacity, maxBatch;
    private readonly Action<IReadOnlyList<TJob>> runBatch;
    private int pending, batchesRun, largestBatch;

    /// <param name="runBatch">runs one batch; it must complete every job it is given, also on failure.</param>
    public GenerationQueue(int capacity, int maxBatch, Action<IReadOnlyList<TJob>> runBatch)
    {
        this.capacity = capacity;
        this.maxBatch = maxBatch;
        this.runBatch = runBatch;
        worker = new Thread(Drain) { IsBackground = true, Name = "sharptune-generation" };
        worker.Start();
    }

    /// <summary>Requests waiting or running.</summary>
    public int Pending => Volatile.Read(ref pending);

    /// <summary>Batches run so far, and the most jobs one of them held.</summary>
    public int BatchesRun => Volatile.Read(ref batchesRun);
    public int LargestBatch => Volatile.Read(ref largestBatch);

    /// <summary>Queues <paramref name="job"/>; false when the queue is full or shutting down.</summary>
    public bool TryEnqueue(TJob job)
    {
        if (Interlocked.Increment(ref pending) > capacity || !work.Writer.TryWrite(job))
        {
            Interlocked.Decrement(ref pending);
            return false;
        }
        return true;
    }

    private void Drain()
    {
        var reader = work.Reader;
        var batch = new List<TJob>(maxBatch);
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            batch.Clear();
            while (batch.Count < maxBatch && reader.TryRead(out var job)) batch.Add(job);
            Volatile.Write(ref largestBatch, Math.Max(largestBatch, batch.Count));
            Interlocked.Increment(ref batchesRun);
            try { runBatch(batch); }
            finally { Interlocked.Add(ref pending, -batch.Count); }
        }
    }

    /// <summary>Stops taking work; what is queued still runs, then the thread ends.</summary>
    public void Dispose()
    {
        work.Writer.TryComplete();
        worker.Join(TimeSpan.FromSeconds(30));
    }
}
