namespace SharpTune.Jobs;

/// <summary>Settings of `sharptune jobs serve`.</summary>
public sealed record JobServiceOptions
{
    /// <summary>Address to bind; loopback unless told otherwise.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (tests).</summary>
    public int Port { get; init; } = 8001;
    /// <summary>Root of every job folder (USER/RUN_ID) and of the queue database.</summary>
    public required string JobsDir { get; init; }
    /// <summary>One key for everything (jobs carry their own user_id); exclusive with <see cref="Keys"/>.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Key → user: each user sees and cancels only their own jobs.</summary>
    public IReadOnlyDictionary<string, string>? Keys { get; init; }
    /// <summary>Jobs trained at the same time; 0 accepts and queues but starts none (maintenance).</summary>
    public int MaxRunning { get; init; } = 1;
    /// <summary>How long a cancelled or timed-out child may take to checkpoint after SIGTERM before it is killed.</summary>
    public TimeSpan CancelGrace { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Largest accepted request body (413 above).</summary>
    public long MaxRequestBodyBytes { get; init; } = 1 << 20;
    /// <summary>Folder that relative paths in args (base_model, datasets) are resolved against.</summary>
    public string BaseDirectory { get; init; } = Environment.CurrentDirectory;
    /// <summary>How jobs start `sharptune train`; default the CLI of this build.</summary>
    public TrainerCommand? Trainer { get; init; }

    public const string DatabaseName = ".sharptune-jobs.db";

    public JobServiceOptions Validated()
    {
        if (string.IsNullOrWhiteSpace(Host)) throw new InvalidInputException("--host: empty; give an address such as 127.0.0.1");
        if (Port is < 0 or > 65535) throw new InvalidInputException($"--port: {Port} is invalid; expected 0..65535");
        if (string.IsNullOrWhiteSpace(JobsDir)) throw new InvalidInputException("--jobs-dir: empty; give a folder");
        if (ApiKey is { Length: 0 }) throw new InvalidInputException("--api-key: empty; give a key or leave the option out");
        if (ApiKey is not null && Keys is not null) throw new InvalidInputException("--api-key and --keys-file are both set; expected one of them");
        if (MaxRunning < 0) throw new InvalidInputException($"--max-running: {MaxRunning} is invalid; expected ≥ 0");
        if (CancelGrace < TimeSpan.Zero) throw new InvalidInputException("--cancel-grace: negative; expected seconds ≥ 0");
        if (MaxRequestBodyBytes < 1024) throw new InvalidInputException($"--max-body-bytes: {MaxRequestBodyBytes} is too small; expected ≥ 1024");
        return this;
    }
}
