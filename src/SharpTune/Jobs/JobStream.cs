using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace SharpTune.Jobs;

/// <summary>
/// GET /stream/{id}: server-sent events from the job's start — `state` (status changes), `log` (each train.log line),
/// `metrics` (each metrics.jsonl row: step loss/lr/grad_norm, eval rows) — and a final `end` with the last status once the
/// job is finished and everything it wrote has been sent.
/// </summary>
public static class JobStream
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    public static async Task Serve(HttpContext context, JobStore store, JobRecord job)
    {
        var aborted = context.RequestAborted;
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        long logOffset = 0;
        var partial = new StringBuilder();
        int metricsSent = 0;
        JobState? lastState = null;
        while (!aborted.IsCancellationRequested)
        {
            var now = store.Get(job.Id) ?? job;
            bool final = JobStates.IsFinal(now.State);
            if (now.State != lastState)
            {
                lastState = now.State;
                await Send(context, "state", new JsonObject { ["id"] = now.Id, ["status"] = JobStates.Name(now.State), ["error"] = now.Error });
            }
            logOffset = await SendLog(context, now.LogPath, logOffset, partial);
            var metrics = JobOutput.Metrics(now.JobDir);
            for (; metricsSent < metrics.Count; metricsSent++) await Send(context, "metrics", metrics[metricsSent]);
            if (final)
            {
                if (partial.Length > 0) await Send(context, "log", new JsonObject { ["line"] = partial.ToString() });
                await Send(context, "end", new JsonObject { ["id"] = now.Id, ["status"] = JobStates.Name(now.State), ["error"] = now.Error });
                return;
            }
            await Task.Delay(Poll, aborted);
        }
    }

    private static async Task<long> SendLog(HttpContext context, string path, long offset, StringBuilder partial)
    {
        if (!File.Exists(path)) return offset;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (stream.Length <= offset) return offset;
        stream.Seek(offset, SeekOrigin.Begin);
        var bytes = new byte[stream.Length - offset];
        await stream.ReadExactlyAsync(bytes, context.RequestAborted);
        // Only whole lines go out; a line still being written waits for its newline.
        int lastNewline = Array.LastIndexOf(bytes, (byte)'\n');
        if (lastNewline < 0) return offset;
        foreach (var line in Encoding.UTF8.GetString(bytes, 0, lastNewline).Split('\n'))
            await Send(context, "log", new JsonObject { ["line"] = line.TrimEnd('\r') });
        return offset + lastNewline + 1;
    }

    private static async Task Send(HttpContext context, string name, JsonObject data)
    {
        await context.Response.WriteAsync($"event: {name}\ndata: {data.ToJsonString()}\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }
}
