using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;

namespace SharpTune.Tests.Jobs;

/// <summary>Jobs that really train (a few steps of examples/models/tiny-chat) through the HTTP API.</summary>
public sealed class JobServiceTests
{
    private const string Token = "hf_secretTOKENvalue_4242";

    [Fact]
    public async Task SampleRequestRunsEndToEnd()
    {
        await using var service = await JobServiceHarness.Start();
        var client = service.Client;
        var request = JobKit.Sample();
        request["input"]!["credentials"]!["hf_token"] = Token;
        var (status, accepted) = await JobKit.Post(client, "/run", request.ToJsonString());
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("IN_QUEUE", accepted["status"]!.GetValue<string>());
        string id = accepted["id"]!.GetValue<string>();
        Assert.Contains(accepted["warnings"]!.AsArray(), w => w!.GetValue<string>().Contains("output_dir \"./outputs/lora-out\" is replaced"));

        // The stream opened while the job runs delivers its whole history and ends with the final state.
        var stream = Task.Run(() => ReadStream(client, id));
        var (last, seen) = await JobKit.WaitFor(client, id);
        Assert.Equal("COMPLETED", last["status"]!.GetValue<string>());
        Assert.Equal(["IN_PROGRESS", "COMPLETED"], seen.SkipWhile(s => s == "IN_QUEUE").ToArray());
        Assert.True(last["executionTime"]!.GetValue<long>() > 0);
        Assert.True(last["delayTime"]!.GetValue<long>() >= 0);

        var output = last["output"]!.AsObject();
        string jobDir = Path.Combine(service.JobsDir, "user", id);
        Assert.Equal(jobDir, output["output_dir"]!.GetValue<string>());
        var artifacts = output["artifacts"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
        Assert.Contains("adapter_model.safetensors", artifacts);
        Assert.Contains("adapter_config.json", artifacts);
        Assert.DoesNotContain(artifacts, a => a.StartsWith("checkpoint-"));
        var metrics = File.ReadAllLines(Path.Combine(jobDir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var steps = metrics.Where(m => m.ContainsKey("loss")).ToList();
        Assert.Equal([1, 2, 3], steps.Select(m => m["step"]!.GetValue<int>()));
        Assert.Equal(steps[^1]["loss"]!.GetValue<double>(), output["final_loss"]!.GetValue<double>());
        Assert.Equal(metrics.Last(m => m.ContainsKey("eval_loss"))["eval_loss"]!.GetValue<double>(), output["eval"]!["eval_loss"]!.GetValue<double>());
        Assert.Equal(3, output["steps"]!.GetValue<int>());
        Assert.Equal(new JsonObject { ["step"] = 3, ["total_steps"] = 3 }.ToJsonString(), last["progress"]!.ToJsonString());

        var events = await stream;
        Assert.Equal([1, 2, 3], events.Where(e => e.Name == "metrics" && e.Data.ContainsKey("loss")).Select(e => e.Data["step"]!.GetValue<int>()));
        Assert.Contains(events, e => e.Name == "log" && e.Data["line"]!.GetValue<string>().StartsWith("step 3/3"));
        Assert.Equal("COMPLETED", events.Last(e => e.Name == "state").Data["status"]!.GetValue<string>());
        Assert.Equal("end", events[^1].Name);

        // A ranged download of an artifact is the file's own bytes.
        using var ranged = new HttpRequestMessage(HttpMethod.Get, $"/jobs/{id}/artifacts/adapter_model.safetensors");
        ranged.Headers.Range = new RangeHeaderValue(0, 7);
        using var part = await client.SendAsync(ranged);
        Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
        Assert.Equal(File.ReadAllBytes(Path.Combine(jobDir, "adapter_model.safetensors"))[..8], await part.Content.ReadAsByteArrayAsync());
        var listing = (await JobKit.Get(client, $"/jobs/{id}/artifacts")).Body["artifacts"]!.AsArray();
        Assert.Contains(listing, a => a!["path"]!.GetValue<string>() == "checkpoint-3/trainer_state.json");

        // The token went to the child only: not in the database, not in any file, not in any answer.
        Assert.DoesNotContain(Token, JobKit.DatabaseText(service.JobsDir));
        foreach (var file in Directory.EnumerateFiles(service.JobsDir, "*", SearchOption.AllDirectories))
            Assert.DoesNotContain(Token, File.ReadAllText(file));
        Assert.DoesNotContain(Token, last.ToJsonString());
        Assert.DoesNotContain(Token, (await JobKit.Get(client, "/jobs")).Body.ToJsonString());

        var health = (await JobKit.Get(new HttpClient { BaseAddress = service.Server.Address }, "/health")).Body;
        Assert.Equal(1, health["jobs"]!["completed"]!.GetValue<int>());
        Assert.Equal(0, health["workers"]!["running"]!.GetValue<int>());
    }

    [Fact]
    public async Task CancelCheckpointsTheRunningJobAndTimeoutEndsAsTimedOut()
    {
        await using var service = await JobServiceHarness.Start(maxRunning: 2);
        var client = service.Client;
        JsonObject Long(string run, long? timeoutMs)
        {
            var r = JobKit.Sample(a => { a["max_steps"] = 500; a["save_steps"] = 1000; a.Remove("eval_steps"); a["val_set_size"] = 0; }, run);
            if (timeoutMs is { } ms) r["policy"] = new JsonObject { ["executionTimeout"] = ms };
            return r;
        }
        string cancelled = (await JobKit.Post(client, "/run", Long("to-cancel", null).ToJsonString())).Body["id"]!.GetValue<string>();
        string timed = (await JobKit.Post(client, "/run", Long("to-time-out", 2000).ToJsonString())).Body["id"]!.GetValue<string>();

        await JobKit.WaitFor(client, cancelled, s => s["progress"]!["step"]!.GetValue<int>() >= 1);
        var (status, answer) = await JobKit.Post(client, $"/cancel/{cancelled}", "");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(answer["stopping"]!.GetValue<bool>());
        var (last, _) = await JobKit.WaitFor(client, cancelled);
        Assert.Equal("CANCELLED", last["status"]!.GetValue<string>());
        // SIGINT made the trainer save where it stopped: the job can resume from there.
        Assert.True(last["resumable"]!.GetValue<bool>());
        int stoppedAt = last["progress"]!["step"]!.GetValue<int>();
        Assert.InRange(stoppedAt, 1, 499);
        Assert.True(Directory.Exists(Path.Combine(service.JobsDir, "user", "to-cancel", $"checkpoint-{stoppedAt}")));
        Assert.Equal(HttpStatusCode.Conflict, (await JobKit.Post(client, $"/cancel/{cancelled}", "")).Status);

        var (timedOut, _) = await JobKit.WaitFor(client, timed);
        Assert.Equal("TIMED_OUT", timedOut["status"]!.GetValue<string>());
        Assert.Contains("executionTimeout of 2000 ms", timedOut["error"]!.GetValue<string>());
        Assert.True(timedOut["executionTime"]!.GetValue<long>() >= 2000);
    }

    [Fact]
    public async Task CleanShutdownCheckpointsRunningJobsAndLeavesThemResumable()
    {
        var service = await JobServiceHarness.Start();
        var request = JobKit.Sample(a => { a["max_steps"] = 500; a["save_steps"] = 1000; a.Remove("eval_steps"); a["val_set_size"] = 0; }, "shutdown");
        string id = (await JobKit.Post(service.Client, "/run", request.ToJsonString())).Body["id"]!.GetValue<string>();
        string queued = (await JobKit.Post(service.Client, "/run", JobKit.Sample(runId: "waiting").ToJsonString())).Body["id"]!.GetValue<string>();
        await JobKit.WaitFor(service.Client, id, s => s["progress"]!["step"]!.GetValue<int>() >= 1);
        await service.DisposeAsync();   // what SIGTERM does

        using var store = new SharpTune.Jobs.JobStore(Path.Combine(service.JobsDir, SharpTune.Jobs.JobServiceOptions.DatabaseName));
        var job = store.Get(id)!;
        Assert.Equal(SharpTune.Jobs.JobState.Failed, job.State);
        Assert.Equal("worker stopped (the server shut down)", job.Error);
        Assert.True(job.Resumable);
        Assert.NotNull(SharpTune.Training.Checkpointer.Latest(job.JobDir));
        Assert.Equal(SharpTune.Jobs.JobState.InQueue, store.Get(queued)!.State);
    }

    private static async Task<List<(string Name, JsonObject Data)>> ReadStream(HttpClient client, string id)
    {
        using var response = await client.GetAsync($"/stream/{id}", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        var events = new List<(string, JsonObject)>();
        string name = "";
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.StartsWith("event: ")) name = line[7..];
            else if (line.StartsWith("data: ")) events.Add((name, JsonNode.Parse(line[6..])!.AsObject()));
        }
        return events;
    }
}
