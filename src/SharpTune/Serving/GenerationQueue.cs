using System.Threading.Channels;

namespace SharpTune.Serving;

/// <summary>
/// One model, one generation at a time: requests run in arrival order on a single dedicated thread, so the model and
/// tokenizer are never touched concurrently and a burst of requests waits instead of failing.
/// </summary>
public sealed class GenerationQueue : IDisposable
{
    private readonly Channel<Action> work = Channel.CreateUnbounded<Action>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Thread worker;
    private readonly int capacity;
    private int pending;

    public GenerationQueue(int capacity)
    {
        this.capacity = capacity;
        worker = new Thread(Drain) { IsBackground = true, Name = "sharptune-generation" };
        worker.Start();
    }

    /// <summary>Requests waiting or running.</summary>
    public int Pending => Volatile.Read(ref pending);

    /// <summary>Queues <paramref name="job"/>; false when the queue is full.</summary>
    public bool TryEnqueue<T>(Func<T> job, out Task<T> result)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        result = done.Task;
        if (Interlocked.Increment(ref pending) > capacity)
        {
            Interlocked.Decrement(ref pending);
            return false;
        }
        void Run()
        {
            try { done.SetResult(job()); }
            catch (Exception e) { done.SetException(e); }
            finally { Interlocked.Decrement(ref pending); }
        }
        if (!work.Writer.TryWrite(Run))
        {
            Interlocked.Decrement(ref pending);
            done.SetException(new ObjectDisposedException(nameof(GenerationQueue), "the server is shutting down"));
        }
        return true;
    }

    private void Drain()
    {
        var reader = work.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            while (reader.TryRead(out var job)) job();
    }

    /// <summary>Stops taking work; what is queued still runs, then the thread ends.</summary>
    public void Dispose()
    {
        work.Writer.TryComplete();
        worker.Join(TimeSpan.FromSeconds(30));
    }
}
