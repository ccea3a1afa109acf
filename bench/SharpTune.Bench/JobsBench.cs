using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using SharpTune.Jobs;

namespace SharpTune.Bench;

/// <summary>
/// The job service under load: N concurrent submissions of the RunPod-shaped test request, then C clients polling
/// /status for D seconds while more jobs arrive; prints submission throughput and /status latency percentiles. Nothing
/// trains (--max-running 0), so the figures are the API's and the SQLite queue's own.
/// </summary>
public static class JobsBench
{
    public const string Mode = "jobs";
    public const string Usage = "jobs [--jobs 200] [--clients 16] [--seconds 5]   job service: concurrent /run and /status p50/p95/p99 latency";

    public static int Run(string[] args)
    {
        int jobs = 200, clients = 16;
        double seconds = 5;
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--jobs": jobs = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--clients": clients = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                default: Console.Error.WriteLine($"error: unknown option {args[i]}; {Usage}"); return 2;
            }
        }
        return RunAsync(jobs, clients, seconds).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(int jobs, int clients, double seconds)
    {
        string root = BenchSupport.RepoRoot();
        string dir = Path.Combine(Path.GetTempPath(), "sharptune-jobs-bench-" + Guid.NewGuid().ToString("N"));
        const string key = "bench-key-0001";
        // No job starts (max-running 0), so the trainer command is never run.
        var options = new JobServiceOptions { Port = 0, JobsDir = dir, ApiKey = key, MaxRunning = 0, BaseDirectory = root, Trainer = new TrainerCommand("/bin/false", []) };
        await using var server = new JobServer(options);
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.Address };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        string template = File.ReadAllText(Path.Combine(root, "tests", "fixtures", "jobs", "runpod-request.json"));
        string Body(int i)
        {
            var request = JsonNode.Parse(template)!.AsObject();
            request["input"]!["run_id"] = $"bench-{i:D6}";
            return request.ToJsonString();
        }

        var submit = Stopwatch.StartNew();
        var ids = await Task.WhenAll(Enumerable.Range(0, jobs).Select(async i =>
        {
            using var response = await http.PostAsync("/run", new StringContent(Body(i), Encoding.UTF8, "application/json"));
            response.EnsureSuccessStatusCode();
            return JsonNode.Parse(await response.Content.ReadAsStringAsync())!["id"]!.GetValue<string>();
        }));
        double submitSeconds = submit.Elapsed.TotalSeconds;

        var latencies = new List<double>[clients];
        var until = DateTime.UtcNow.AddSeconds(seconds);
        int extra = 0;
        var pollers = Enumerable.Range(0, clients).Select(c => Task.Run(async () =>
        {
            var mine = latencies[c] = [];
            var random = new Random(c);
            while (DateTime.UtcNow < until)
            {
                var watch = Stopwatch.StartNew();
                using var response = await http.GetAsync($"/status/{ids[random.Next(ids.Length)]}");
                await response.Content.ReadAsStringAsync();
                response.EnsureSuccessStatusCode();
                mine.Add(watch.Elapsed.TotalMilliseconds);
            }
        })).ToList();
        // Submissions keep arriving while the pollers run, as on a busy worker.
        var writer = Task.Run(async () =>
        {
            while (DateTime.UtcNow < until)
            {
                int i = jobs + Interlocked.Increment(ref extra);
                using var response = await http.PostAsync("/run", new StringContent(Body(i), Encoding.UTF8, "application/json"));
                response.EnsureSuccessStatusCode();
            }
        });
        await Task.WhenAll(pollers.Append(writer));

        var all = latencies.SelectMany(l => l).Order().ToArray();
        double P(double q) => all[Math.Min(all.Length - 1, (int)Math.Ceiling(q * all.Length) - 1)];
        int recorded = server.Queue.Store.CountByState()[JobState.InQueue];
        Console.WriteLine($"jobs bench: {jobs} concurrent /run in {submitSeconds:F2} s ({jobs / submitSeconds:F0} jobs/s); all {recorded} jobs recorded ({jobs} + {extra} during polling): {(recorded == jobs + extra ? "ok" : "MISMATCH")}");
        Console.WriteLine($"/status under load: {all.Length} requests from {clients} clients in {seconds:F0} s ({all.Length / seconds:F0} req/s) while {extra} more jobs were submitted");
        Console.WriteLine($"/status latency ms: p50 {P(0.50):F2}  p95 {P(0.95):F2}  p99 {P(0.99):F2}  max {all[^1]:F2}");
        Console.WriteLine(BenchSupport.LoadLine());
        try { Directory.Delete(dir, recursive: true); }
        catch (IOException) { /* temp folder */ }
        return recorded == jobs + extra ? 0 : 1;
    }
}
