using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using SharpTune.Serving;
using SharpTune.Config;

namespace SharpTune.Jobs;

/// <summary>
/// The job service over HTTP: RunPod's queue API (/run, /runsync, /status, /stream, /cancel, /retry, /health), job
/// listing, metrics, log and artifact routes for scripts and the dashboard, and the dashboard itself at /.
/// </summary>
public sealed class JobServer : HttpService
{
    private const string CallerKey = "sharptune.caller";
    private readonly JobServiceOptions options;
    private readonly TextWriter? log;

    public JobQueue Queue { get; }

    public JobServer(JobServiceOptions options, TextWriter? log = null)
        : base(options.Validated().Host, options.Port, new HttpLimits { MaxRequestBodyBytes = options.MaxRequestBodyBytes }, TimeSpan.FromSeconds(10))
    {
        this.options = options.Validated();
        Queue = new JobQueue(options, log);
        this.log = log is null ? null : TextWriter.Synchronized(log);
        App.Use(Authorize);
        App.MapGet("/health", Health);
        App.MapPost("/run", context => Run(context, sync: false));
        App.MapPost("/runsync", context => Run(context, sync: true));
        App.MapGet("/status/{id}", (HttpContext context, string id) => Guarded(context, () => Visible(context, id) is { } job ? Json(context, 200, Status(job)) : NotFound(context, id)));
        App.MapGet("/stream/{id}", (HttpContext context, string id) => Guarded(context, () => Visible(context, id) is { } job ? JobStream.Serve(context, Queue.Store, job) : NotFound(context, id)));
        App.MapPost("/cancel/{id}", (HttpContext context, string id) => Guarded(context, () => Cancel(context, id)));
        App.MapPost("/retry/{id}", (HttpContext context, string id) => Guarded(context, () => Retry(context, id)));
        App.MapGet("/jobs", (HttpContext context) => Guarded(context, () => Json(context, 200, new JsonObject
        {
            ["jobs"] = new JsonArray(Queue.Store.List(Caller(context)).Select(j => (JsonNode)Status(j, withOutput: false)).ToArray()),
        })));
        App.MapGet("/jobs/{id}/metrics", (HttpContext context, string id) => Guarded(context, () => Visible(context, id) is { } job
            ? Json(context, 200, new JsonObject { ["id"] = id, ["metrics"] = new JsonArray(JobOutput.Metrics(job.JobDir).Select(m => (JsonNode)m).ToArray()) })
            : NotFound(context, id)));
        App.MapGet("/jobs/{id}/log", (HttpContext context, string id) => Guarded(context, () => Visible(context, id) is { } job ? Log(context, job) : NotFound(context, id)));
        App.MapGet("/jobs/{id}/artifacts", (HttpContext context, string id) => Guarded(context, () => Visible(context, id) is { } job
            ? Json(context, 200, new JsonObject
            {
                ["id"] = id,
                ["artifacts"] = new JsonArray(JobOutput.Artifacts(job.JobDir).Select(a => (JsonNode)new JsonObject
                {
                    ["path"] = a.Path, ["size"] = a.Size, ["modified"] = a.Modified.ToString("O"),
                }).ToArray()),
            })
            : NotFound(context, id)));
        App.MapGet("/jobs/{id}/artifacts/{**path}", (HttpContext context, string id, string path) => Guarded(context, () => Download(context, id, path)));
        foreach (var asset in Dashboard.Assets)
            App.MapGet(asset.Route, (HttpContext context) => Dashboard.Serve(context, asset));
    }

    protected override ValueTask DisposeServiceAsync() => Queue.DisposeAsync();

    // ---- auth ----

    /// <summary>Every route but /health and the dashboard's static files (which hold no data) needs the bearer key.</summary>
    private async Task Authorize(HttpContext context, RequestDelegate next)
    {
        var path = context.Request.Path.Value ?? "/";
        bool open = path == "/health" || Dashboard.Assets.Any(a => a.Route == path);
        if (!open && (options.ApiKey is not null || options.Keys is not null))
        {
            string header = context.Request.Headers.Authorization.ToString();
            string? user = null;
            bool ok = false;
            if (header.StartsWith("Bearer ", StringComparison.Ordinal))
            {
                var given = Encoding.UTF8.GetBytes(header["Bearer ".Length..]);
                if (options.ApiKey is { } key) ok = CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(key));
                else
                    foreach (var (candidate, owner) in options.Keys!)
                        if (CryptographicOperations.FixedTimeEquals(given, Encoding.UTF8.GetBytes(candidate))) { ok = true; user = owner; }
            }
            if (!ok)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer";
                await Error(context, 401, header.Length == 0 ? "missing API key: send the header 'Authorization: Bearer KEY'" : "incorrect API key");
                return;
            }
            context.Items[CallerKey] = user;
        }
        await next(context);
    }

    /// <summary>The user the key belongs to (--keys-file), or null: a single --api-key or no auth sees every job.</summary>
    private static string? Caller(HttpContext context) => context.Items.TryGetValue(CallerKey, out var user) ? user as string : null;

    /// <summary>The job, if it exists and the caller may see it; another user's job is indistinguishable from a missing one.</summary>
    private JobRecord? Visible(HttpContext context, string id) =>
        Queue.Store.Get(id) is { } job && (Caller(context) is not { } user || job.UserId == user) ? job : null;

    // ---- routes ----

    private Task Health(HttpContext context)
    {
        var counts = Queue.Store.CountByState();
        return Json(context, 200, new JsonObject
        {
            ["jobs"] = new JsonObject
            {
                ["inQueue"] = counts[JobState.InQueue], ["inProgress"] = counts[JobState.InProgress], ["completed"] = counts[JobState.Completed],
                ["failed"] = counts[JobState.Failed], ["cancelled"] = counts[JobState.Cancelled], ["timedOut"] = counts[JobState.TimedOut],
            },
            ["workers"] = new JsonObject
            {
                ["running"] = Queue.RunningCount, ["idle"] = Math.Max(0, Queue.MaxRunning - Queue.RunningCount), ["max"] = Queue.MaxRunning,
            },
        });
    }

    private Task Run(HttpContext context, bool sync) => Guarded(context, async () =>
    {
        var request = JobRequest.Parse(await ReadBody(context));
        string user = SubmittingUser(context, request);
        var job = Queue.Submit(user, request);
        if (!sync)
        {
            await Json(context, 200, new JsonObject { ["id"] = job.Id, ["status"] = JobStates.Name(job.State), ["warnings"] = JsonNode.Parse(job.WarningsJson) });
            return;
        }
        double wait = 90;
        if (context.Request.Query["wait"] is { Count: > 0 } w && (!double.TryParse(w[0], System.Globalization.CultureInfo.InvariantCulture, out wait) || wait is < 0 or > 3600))
            wait = 90;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(wait);
        while (DateTime.UtcNow < deadline && !JobStates.IsFinal(Queue.Store.Get(job.Id)!.State))
            await Task.Delay(200, context.RequestAborted);
        await Json(context, 200, Status(Queue.Store.Get(job.Id)!));
    });

    /// <summary>With --keys-file the key decides the user (input.user_id may only repeat it); otherwise input.user_id, default "default".</summary>
    private static string SubmittingUser(HttpContext context, JobRequest request)
    {
        if (Caller(context) is { } user)
        {
            if (request.UserId is { } given && given != user)
                throw new JobRequestException(403, [$"input.user_id: {given} is not the user of this API key; leave it out or give {user}"]);
            return user;
        }
        return request.UserId ?? "default";
    }

    private Task Cancel(HttpContext context, string id)
    {
        if (Visible(context, id) is not { } job) return NotFound(context, id);
        if (JobStates.IsFinal(job.State))
            return Error(context, 409, $"job {id} is already {JobStates.Name(job.State)}");
        var after = Queue.Cancel(id)!;
        return Json(context, 200, new JsonObject
        {
            ["id"] = id,
            ["status"] = JobStates.Name(after.State),
            ["stopping"] = after.State == JobState.InProgress,
        });
    }

    private async Task Retry(HttpContext context, string id)
    {
        if (Visible(context, id) is null)
        {
            await NotFound(context, id);
            return;
        }
        // An optional body {"credentials": {"hf_token": …}} gives the token again (a restarted server no longer has it).
        string? token = JobRequest.RetryToken(await ReadBody(context));
        var job = Queue.Retry(id, token)!;
        await Json(context, 200, new JsonObject { ["id"] = id, ["status"] = JobStates.Name(job.State), ["resume"] = job.ResumeNext });
    }

    private async Task Log(HttpContext context, JobRecord job)
    {
        int tail = int.TryParse(context.Request.Query["tail"], out var t) && t > 0 ? Math.Min(t, 10_000) : 200;
        var lines = new List<string>();
        if (File.Exists(job.LogPath))
        {
            using var reader = new StreamReader(new FileStream(job.LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
            var ring = new Queue<string>();
            while (await reader.ReadLineAsync(context.RequestAborted) is { } line)
            {
                ring.Enqueue(line);
                if (ring.Count > tail) ring.Dequeue();
            }
            lines.AddRange(ring);
        }
        await Json(context, 200, new JsonObject { ["id"] = job.Id, ["lines"] = new JsonArray(lines.Select(l => (JsonNode)l).ToArray()) });
    }

    private Task Download(HttpContext context, string id, string path)
    {
        if (Visible(context, id) is not { } job) return NotFound(context, id);
        if (JobOutput.ResolveArtifact(job.JobDir, path) is not { } file)
            return Error(context, 404, $"job {id} has no artifact '{path}'; GET /jobs/{id}/artifacts lists them");
        // Results.File streams and answers Range requests (206 / 416) itself.
        return Results.File(file, "application/octet-stream", Path.GetFileName(file), enableRangeProcessing: true).ExecuteAsync(context);
    }

    // ---- answers ----

    /// <summary>RunPod's status object plus SharpTune's fields (user, run, progress, resumable, warnings).</summary>
    private static JsonObject Status(JobRecord job, bool withOutput = true)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var (step, total) = job.State == JobState.InQueue && job.Attempts == 0 ? (0, 0) : JobOutput.Progress(job.JobDir);
        var status = new JsonObject
        {
            ["id"] = job.Id,
            ["status"] = JobStates.Name(job.State),
            ["delayTime"] = (job.StartedAt ?? job.FinishedAt ?? now) - job.QueuedAt,
            ["executionTime"] = job.StartedAt is { } started ? (job.FinishedAt ?? now) - started : 0,
            ["user_id"] = job.UserId,
            ["run_id"] = job.RunId,
            ["model_id"] = job.ModelId,
            ["created_at"] = DateTimeOffset.FromUnixTimeMilliseconds(job.CreatedAt).ToString("O"),
            ["progress"] = new JsonObject { ["step"] = step, ["total_steps"] = total },
            ["attempts"] = job.Attempts,
            ["resumable"] = job.Resumable,
        };
        if (job.StopAs is { } stopAs && job.State == JobState.InProgress) status["stopping_as"] = JobStates.Name(stopAs);
        if (job.Error is { } error) status["error"] = error;
        if (withOutput && job.OutputJson is { } output) status["output"] = JsonNode.Parse(output);
        if (withOutput) status["warnings"] = JsonNode.Parse(job.WarningsJson);
        return status;
    }

    /// <summary>The body as text; bytes that are not UTF-8 are refused (400) instead of read as U+FFFD.</summary>
    private async Task<string> ReadBody(HttpContext context)
    {
        byte[] body;
        try { body = await HttpHost.ReadBody(context, new HttpLimits { MaxRequestBodyBytes = options.MaxRequestBodyBytes }); }
        catch (HttpBodyException e) { throw new JobRequestException(e.Status, [$"body: {e.Message}"]); }
        if (StrictJson.FirstInvalidUtf8(body) is { } bad)
            throw new JobRequestException(400, [$"body: invalid UTF-8 at byte {bad.Offset}: {bad.Problem}; the text must be UTF-8"]);
        return Encoding.UTF8.GetString(body);
    }

    /// <summary>Turns refusals into their status code with every problem listed; anything unexpected into a 500 naming it.</summary>
    private async Task Guarded(HttpContext context, Func<Task> handle)
    {
        try
        {
            await handle();
        }
        catch (JobRequestException e)
        {
            await Error(context, e.Status, e.Status == 400 ? "invalid request" : e.Problems[0], e.Problems);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away.
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            // The caller gets the id to quote, never the exception's text (it can name files, types and internals).
            string id = HttpHost.RequestId(context);
            log?.WriteLine($"error: request {id} ({context.Request.Path}) failed: {e}");
            await Error(context, 500, $"internal server error; the server log has the details under request id {id}");
        }
    }

    private static Task NotFound(HttpContext context, string id) => Error(context, 404, $"no job {id}");

    private static Task Error(HttpContext context, int status, string message, IReadOnlyList<string>? problems = null)
    {
        var body = new JsonObject { ["error"] = message };
        if (problems is not null) body["problems"] = new JsonArray(problems.Select(p => (JsonNode)p).ToArray());
        return Json(context, status, body);
    }

    internal static Task Json(HttpContext context, int status, JsonObject payload)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(payload.ToJsonString(), context.RequestAborted);
    }
}
