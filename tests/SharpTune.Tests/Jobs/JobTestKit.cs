using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using SharpTune.Jobs;

namespace SharpTune.Tests.Jobs;

/// <summary>An in-process job service on a free loopback port over a fresh jobs folder, with helpers to submit and wait.</summary>
internal sealed class JobServiceHarness : IAsyncDisposable
{
    public const string AdminKey = "admin-key-0123";
    public string JobsDir { get; }
    public JobServer Server { get; }
    public HttpClient Client { get; }

    private JobServiceHarness(string jobsDir, JobServer server, HttpClient client) => (JobsDir, Server, Client) = (jobsDir, server, client);

    public static async Task<JobServiceHarness> Start(int maxRunning = 1, IReadOnlyDictionary<string, string>? keys = null, long maxBody = 1 << 20)
    {
        string dir = TestPaths.TempDir();
        var options = new JobServiceOptions
        {
            Port = 0, JobsDir = dir, ApiKey = keys is null ? AdminKey : null, Keys = keys, MaxRunning = maxRunning,
            BaseDirectory = TestPaths.RepoRoot, CancelGrace = TimeSpan.FromSeconds(20), MaxRequestBodyBytes = maxBody,
        };
        var server = new JobServer(options);
        await server.StartAsync();
        var client = Clients.For(server.Address, keys is null ? AdminKey : null);
        return new JobServiceHarness(dir, server, client);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }
}

internal static class Clients
{
    public static HttpClient For(Uri address, string? key)
    {
        var client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromMinutes(5) };
        if (key is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }
}

internal static class JobKit
{
    /// <summary>The RunPod-shaped sample request of tests/fixtures/jobs (base model and data local, a few steps).</summary>
    public static JsonObject Sample(Action<JsonObject>? editArgs = null, string? runId = null)
    {
        var request = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "jobs", "runpod-request.json")))!.AsObject();
        var input = request["input"]!.AsObject();
        if (runId is not null) input["run_id"] = runId;
        editArgs?.Invoke(input["args"]!.AsObject());
        return request;
    }

    public static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    public static async Task<(HttpStatusCode Status, JsonObject Body)> Post(HttpClient client, string path, string body)
    {
        using var response = await client.PostAsync(path, Json(body));
        string text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text)!.AsObject());
    }

    public static async Task<(HttpStatusCode Status, JsonObject Body)> Get(HttpClient client, string path)
    {
        using var response = await client.GetAsync(path);
        string text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text)!.AsObject());
    }

    /// <summary>Polls /status until the job reaches a final state (or <paramref name="until"/>); returns every status seen, in order.</summary>
    public static async Task<(JsonObject Last, List<string> Seen)> WaitFor(HttpClient client, string id, Func<JsonObject, bool>? until = null, int timeoutSeconds = 240)
    {
        var seen = new List<string>();
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (true)
        {
            var (status, body) = await Get(client, $"/status/{id}");
            Assert.Equal(HttpStatusCode.OK, status);
            string state = body["status"]!.GetValue<string>();
            if (seen.Count == 0 || seen[^1] != state) seen.Add(state);
            if (until?.Invoke(body) ?? state is "COMPLETED" or "FAILED" or "CANCELLED" or "TIMED_OUT") return (body, seen);
            if (DateTime.UtcNow > deadline) Assert.Fail($"job {id} still {state} after {timeoutSeconds} s: {body.ToJsonString()}");
            await Task.Delay(100);
        }
    }

    /// <summary>Every file under the jobs folder (path and size) plus every database row: equal snapshots mean nothing changed.</summary>
    public static string Snapshot(string jobsDir)
    {
        var sb = new StringBuilder();
        foreach (var f in Directory.EnumerateFiles(jobsDir, "*", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith(JobServiceOptions.DatabaseName, StringComparison.Ordinal)).Order())
            sb.Append(Path.GetRelativePath(jobsDir, f)).Append(' ').Append(new FileInfo(f).Length).Append('\n');
        foreach (var d in Directory.EnumerateDirectories(jobsDir, "*", SearchOption.AllDirectories).Order())
            sb.Append(Path.GetRelativePath(jobsDir, d)).Append("/\n");
        sb.Append("rows:\n");
        foreach (var row in Rows(jobsDir)) sb.Append(row).Append('\n');
        return sb.ToString();
    }

    /// <summary>The job table as text, read through a second connection (what another process would see).</summary>
    public static List<string> Rows(string jobsDir)
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(jobsDir, JobServiceOptions.DatabaseName)};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT id, state, user_id, run_id FROM jobs ORDER BY seq";
        using var r = cmd.ExecuteReader();
        var rows = new List<string>();
        while (r.Read()) rows.Add($"{r.GetString(0)} {r.GetString(1)} {r.GetString(2)} {r.GetString(3)}");
        return rows;
    }

    /// <summary>All text of a table: what a leak check searches.</summary>
    public static string DatabaseText(string jobsDir)
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(jobsDir, JobServiceOptions.DatabaseName)};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT * FROM jobs";
        using var r = cmd.ExecuteReader();
        var sb = new StringBuilder();
        while (r.Read()) for (int i = 0; i < r.FieldCount; i++) sb.Append(r.GetValue(i)).Append('|');
        return sb.ToString();
    }
}
