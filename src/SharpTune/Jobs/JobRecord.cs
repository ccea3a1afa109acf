namespace SharpTune.Jobs;

/// <summary>One job as the database holds it. Times are Unix milliseconds. Credentials are never part of it.</summary>
public sealed record JobRecord
{
    public required string Id { get; init; }
    /// <summary>Queue order: jobs start by ascending Seq (a retry takes a new, larger one).</summary>
    public long Seq { get; init; }
    public required string UserId { get; init; }
    public required string RunId { get; init; }
    public string? ModelId { get; init; }
    public JobState State { get; init; }
    /// <summary>The folder jobs-dir/USER/RUN_ID: the run's output_dir, plus config.yaml (what the child trains from) and train.log.</summary>
    public required string JobDir { get; init; }
    public long CreatedAt { get; init; }
    /// <summary>When the job last entered the queue (submission or retry); delayTime counts from here.</summary>
    public long QueuedAt { get; init; }
    public long? StartedAt { get; init; }
    public long? FinishedAt { get; init; }
    public string? Error { get; init; }
    /// <summary>The completed job's output object (JSON text).</summary>
    public string? OutputJson { get; init; }
    /// <summary>Process id of the running `sharptune train`, to find a child left over by a killed server.</summary>
    public int? Pid { get; init; }
    /// <summary>A checkpoint exists, so a retry continues from it instead of starting over.</summary>
    public bool Resumable { get; init; }
    /// <summary>The next start passes --resume (set by a retry of a resumable job).</summary>
    public bool ResumeNext { get; init; }
    /// <summary>policy.executionTimeout in milliseconds; null = none.</summary>
    public long? ExecutionTimeoutMs { get; init; }
    public int Attempts { get; init; }
    /// <summary>Config warnings found at submission (ignored keys), JSON array text.</summary>
    public string WarningsJson { get; init; } = "[]";
    /// <summary>A cancel (or timeout) was asked of the running child; the state it ends in once the child is gone.</summary>
    public JobState? StopAs { get; init; }

    public string ConfigPath => Path.Combine(JobDir, "config.yaml");
    public string LogPath => Path.Combine(JobDir, "train.log");
}
