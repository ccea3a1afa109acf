using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Training;
using SharpTune.Files;

namespace SharpTune.Jobs;

/// <summary>
/// Accepts, runs and stops jobs: validates a request with the config loader `sharptune validate` uses, writes the job
/// folder, records the job, then starts the oldest queued ones as `sharptune train` children (at most MaxRunning at once),
/// enforces executionTimeout and turns each child's exit into the job's final state.
/// </summary>
public sealed class JobQueue : IAsyncDisposable
{
    private readonly JobServiceOptions options;
    private readonly TrainerCommand trainer;
    private readonly ConcurrentDictionary<string, JobProcess> running = new();
    /// <summary>hf_token of jobs not yet finished, in memory only (a restarted server has none; see docs/jobs.md).</summary>
    private readonly ConcurrentDictionary<string, string> tokens = new();
    private readonly SemaphoreSlim wake = new(0);
    private readonly CancellationTokenSource stopping = new();
    private readonly Task loop;
    private readonly TextWriter? log;

    public JobStore Store { get; }
    public string JobsDir { get; }
    public int RunningCount => running.Count;
    public int MaxRunning => options.MaxRunning;

    public JobQueue(JobServiceOptions options, TextWriter? log = null)
    {
        this.options = options.Validated();
        this.log = log;
        trainer = options.Trainer ?? TrainerCommand.Locate();
        JobsDir = Path.GetFullPath(options.JobsDir);
        Directory.CreateDirectory(JobsDir);
        Store = new JobStore(Path.Combine(JobsDir, JobServiceOptions.DatabaseName));
        Recover();
        loop = Task.Run(Loop);
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>Jobs a killed server left IN_PROGRESS: their child (if it outlived the server) is stopped, the job FAILED and resumable when it has a checkpoint.</summary>
    private void Recover()
    {
        foreach (var job in Store.Running())
        {
            if (job.Pid is { } pid && JobProcess.KillOrphan(pid, job.ConfigPath))
                log?.WriteLine($"jobs: stopped the leftover trainer (pid {pid}) of job {job.Id}");
            bool resumable = Checkpointer.Latest(job.JobDir) is not null;
            Store.Finish(job.Id, JobState.Failed, Now, "worker restarted" + (resumable ? "; POST /retry/{id} resumes from the newest checkpoint" : ""), null, resumable);
            AppendLog(job, "[jobs] worker restarted while this job ran; marked FAILED" + (resumable ? " (resumable)" : ""));
        }
    }

    /// <summary>Validates and records a job for <paramref name="userId"/>; throws <see cref="JobRequestException"/> (400 with every problem, 409 for a taken run_id) leaving nothing behind.</summary>
    public JobRecord Submit(string userId, JobRequest request)
    {
        string id = Guid.NewGuid().ToString();
        string runId = request.RunId ?? id;
        string userDir = Path.Combine(JobsDir, userId);
        string jobDir = Path.Combine(userDir, runId);
        if (Path.GetDirectoryName(Path.GetFullPath(jobDir)) != Path.GetFullPath(userDir) || Path.GetDirectoryName(userDir) != JobsDir)
            throw new JobRequestException(400, [$"input.run_id / input.user_id: not allowed; expected {JobRequest.NameRule}"]);

        var (config, warnings) = ValidateArgs(request.Args, jobDir, request.Problems);
        if (Store.List(userId).Any(j => j.RunId == runId) || Directory.Exists(jobDir))
            throw new JobRequestException(409, [$"input.run_id: {runId} already exists for user {userId}; choose another run_id or POST /retry/{{id}} the existing job"]);

        // The folder appears whole (config.yaml inside) or not at all.
        if (!AtomicFolder.Create(jobDir, temp => File.WriteAllText(Path.Combine(temp, "config.yaml"), ConfigWriter.ToYaml(config))))
            throw new JobRequestException(409, [$"input.run_id: {runId} already exists for user {userId}; choose another run_id"]);
        var job = new JobRecord
        {
            Id = id, UserId = userId, RunId = runId, ModelId = request.ModelId, JobDir = jobDir, CreatedAt = Now,
            ExecutionTimeoutMs = request.ExecutionTimeoutMs, WarningsJson = new JsonArray(warnings.Select(w => (JsonNode)w).ToArray()).ToJsonString(),
        };
        if (!Store.TryInsert(job))
        {
            Directory.Delete(jobDir, recursive: true);
            throw new JobRequestException(409, [$"input.run_id: {runId} already exists for user {userId}; choose another run_id"]);
        }
        if (request.HfToken is { } token) tokens[id] = token;
        wake.Release();
        return Store.Get(id)!;
    }

    /// <summary>The args as the child will train them: output_dir forced to the job folder, unknown keys refused, files checked.</summary>
    private (TrainConfig Config, List<string> Warnings) ValidateArgs(JsonObject args, string jobDir, IReadOnlyList<string> earlier)
    {
        const string source = "input.args";
        var problems = new List<string>(earlier);
        var warnings = new List<string>();
        var copy = (JsonObject)args.DeepClone();
        if (copy["output_dir"] is { } given)
            warnings.Add($"{source}: output_dir {given.ToJsonString()} is replaced by the job folder {jobDir}");
        copy["output_dir"] = jobDir;
        TrainConfig? config = null;
        try
        {
            config = ConfigLoader.FromText(copy.ToJsonString(), source, options.BaseDirectory, isJson: true, [],
                w => (ConfigBinder.IsUnknownKeyMessage(w) ? problems : warnings).Add(w));
            ConfigChecks.CheckFiles(config, source);
        }
        catch (InvalidInputException e)
        {
            problems.AddRange(ConfigProblemsException.Of(e));
        }
        if (problems.Count > 0 || config is null) throw new JobRequestException(400, problems);
        return (config, warnings);
    }

    /// <summary>Cancels a job: a queued one at once, a running one by SIGTERM (checkpoint, stop), killed after the grace period. Returns the job after the request.</summary>
    public JobRecord? Cancel(string id) => Stop(id, JobState.Cancelled);

    private JobRecord? Stop(string id, JobState stopAs)
    {
        if (Store.CancelQueued(id, Now))
        {
            tokens.TryRemove(id, out _);
            return Store.Get(id);
        }
        if (Store.RequestStop(id, stopAs) && running.TryGetValue(id, out var child))
        {
            child.Interrupt();
            _ = Task.Delay(options.CancelGrace).ContinueWith(_ => { if (running.ContainsKey(id)) child.Kill(); }, TaskScheduler.Default);
        }
        return Store.Get(id);
    }

    /// <summary>Re-queues a failed, cancelled or timed-out job; it resumes from its newest checkpoint when it has one.</summary>
    public JobRecord? Retry(string id, string? hfToken)
    {
        var job = Store.Get(id);
        if (job is null) return null;
        bool resume = Checkpointer.Latest(job.JobDir) is not null;
        if (!Store.Requeue(id, Now, resume))
            throw new JobRequestException(409, [$"job {id} is {JobStates.Name(job.State)}; only FAILED, CANCELLED or TIMED_OUT jobs can be retried"]);
        if (hfToken is not null) tokens[id] = hfToken;
        AppendLog(job, $"[jobs] retried{(resume ? $"; resumes from {Path.GetFileName(Checkpointer.Latest(job.JobDir))}" : "")}");
        wake.Release();
        return Store.Get(id);
    }

    private async Task Loop()
    {
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                CheckTimeouts();
                while (running.Count < options.MaxRunning && !stopping.IsCancellationRequested && Store.StartNext(Now) is { } job) Launch(job);
            }
            catch (Exception e)
            {
                log?.WriteLine($"jobs: scheduler error: {e.GetType().Name}: {e.Message}");
            }
            try { await wake.WaitAsync(TimeSpan.FromMilliseconds(500), stopping.Token); }
            catch (OperationCanceledException) { break; }
        }
    }

    private void CheckTimeouts()
    {
        foreach (var id in running.Keys)
        {
            var job = Store.Get(id);
            if (job is { ExecutionTimeoutMs: { } limit, StartedAt: { } started, StopAs: null } && Now - started > limit) Stop(id, JobState.TimedOut);
        }
    }

    private void Launch(JobRecord job)
    {
        JobProcess child;
        try
        {
            if (!File.Exists(job.ConfigPath)) throw new InvalidInputException($"{job.ConfigPath} is missing");
            tokens.TryGetValue(job.Id, out var token);
            child = JobProcess.Start(trainer, job, job.ResumeNext, token);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Store.Finish(job.Id, JobState.Failed, Now, $"could not start the trainer: {e.Message}", null, false);
            return;
        }
        running[job.Id] = child;
        Store.SetPid(job.Id, child.Pid);
        _ = child.Exited.ContinueWith(t => Finished(job, child, t.Result), TaskScheduler.Default);
    }

    private void Finished(JobRecord started, JobProcess child, int exitCode)
    {
        try
        {
            var job = Store.Get(started.Id) ?? started;
            bool resumable = Checkpointer.Latest(job.JobDir) is not null;
            JobState state = job.StopAs ?? (exitCode == 0 && !child.Interrupted ? JobState.Completed : JobState.Failed);
            string? error = state switch
            {
                JobState.Completed => null,
                JobState.Cancelled => "cancelled",
                JobState.TimedOut => $"policy.executionTimeout of {job.ExecutionTimeoutMs} ms exceeded",
                _ when stopping.IsCancellationRequested => "worker stopped (the server shut down)",
                _ => child.LastError ?? $"sharptune train exited with code {exitCode}" + (exitCode is 137 or -1 ? " (killed, out of memory?)" : ""),
            };
            string? output = state == JobState.Completed || File.Exists(Path.Combine(job.JobDir, "metrics.jsonl")) ? JobOutput.Summary(job).ToJsonString() : null;
            Store.Finish(job.Id, state, Now, error, output, resumable && state != JobState.Completed);
            if (state == JobState.Completed || !resumable) tokens.TryRemove(job.Id, out _);
        }
        catch (Exception e)
        {
            log?.WriteLine($"jobs: could not record the end of job {started.Id}: {e.Message}");
        }
        finally
        {
            running.TryRemove(started.Id, out _);
            child.Dispose();
            wake.Release();
        }
    }

    private static void AppendLog(JobRecord job, string line)
    {
        try { if (Directory.Exists(job.JobDir)) File.AppendAllText(job.LogPath, $"{line}\n"); }
        catch (IOException) { /* the log is a convenience; the database holds the state */ }
    }

    /// <summary>Stops accepting work and asks running children to checkpoint and stop (killed after the grace period); they end FAILED "worker stopped", resumable.</summary>
    public async ValueTask DisposeAsync()
    {
        stopping.Cancel();
        await loop;
        foreach (var child in running.Values) child.Interrupt();
        var deadline = Task.Delay(options.CancelGrace);
        var all = Task.WhenAll(running.Values.Select(c => c.Exited));
        if (await Task.WhenAny(all, deadline) != all) foreach (var child in running.Values) child.Kill();
        var drained = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!running.IsEmpty && DateTime.UtcNow < drained) await Task.Delay(50);
        Store.Dispose();
        wake.Dispose();
        stopping.Dispose();
    }
}
