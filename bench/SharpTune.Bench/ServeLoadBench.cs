using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpTune.Bench;

/// <summary>
/// `sharptune serve` under sustained load: the built CLI serves a tiny model on a free loopback port in its own process;
/// C clients send chat and text completions back to back for a warm-up and then for D measured seconds. Prints
/// requests/s, p50/p95/p99 latency, answers by status class, and the server's RSS after start, after the warm-up and
/// at the end. Exits 1 when any answer is a 5xx or a broken connection, or when RSS grew more than 10% after the warm-up.
/// </summary>
public static class ServeLoadBench
{
    public const string Mode = "serve-load";
    public const string Usage = "serve-load [--clients 20] [--seconds 30] [--warmup 5] [--max-tokens 8] [--model examples/models/tiny-chat] [--cli PATH]   `serve` under load: req/s, p50/p95, RSS, 5xx";
    private const double AllowedGrowth = 0.10;

    public static int Run(string[] args)
    {
        int clients = 20, maxTokens = 8;
        // 15 s: the server's heap grows for the first ~10 s of load before it settles (measured: 333 → 374 MiB between 5 and 35 s, flat after 15 s).
        double seconds = 30, warmup = 15;
        string? cli = null;
        string root = BenchSupport.RepoRoot();
        string model = Path.Combine(root, "examples", "models", "tiny-chat");
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--clients": clients = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--warmup": warmup = double.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--max-tokens": maxTokens = int.Parse(args[i + 1], CultureInfo.InvariantCulture); break;
                case "--model": model = Path.GetFullPath(args[i + 1]); break;
                case "--cli": cli = Path.GetFullPath(args[i + 1]); break;
                default: Console.Error.WriteLine($"error: unknown option {args[i]}; {Usage}"); return 2;
            }
        }
        if (args.Length % 2 != 0 || clients < 1 || seconds <= 0 || warmup < 0 || maxTokens < 1)
        {
            Console.Error.WriteLine($"error: expected option/value pairs with positive values; {Usage}");
            return 2;
        }
        return RunAsync(root, model, cli, clients, seconds, warmup, maxTokens).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(string root, string model, string? cli, int clients, double seconds, double warmup, int maxTokens)
    {
        Console.WriteLine(BenchSupport.LoadLine());
        using var server = StartServer(root, model, cli, out var address);
        try
        {
            double startRss = ResidentMiB(server.Id);
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients }) { BaseAddress = address, Timeout = TimeSpan.FromMinutes(2) };
            Console.WriteLine($"server: {cli ?? "sharptune"} serve --model {Path.GetRelativePath(root, model)} (pid {server.Id}) on {address}; RSS after start {startRss:F0} MiB");
            Console.WriteLine($"load: {clients} clients back to back, alternating /v1/chat/completions and /v1/completions, max_tokens {maxTokens}, greedy");
            if (warmup > 0) await Load(http, clients, warmup, maxTokens);
            double warmRss = ResidentMiB(server.Id);
            // RSS every 5 s while the load runs: a leak climbs steadily, a heap settling to its working size levels off.
            var samples = new List<double>();
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        await Task.Delay(5000, sampling.Token);
                        samples.Add(ResidentMiB(server.Id));
                    }
                }
                catch (OperationCanceledException) { }
            });
            var result = await Load(http, clients, seconds, maxTokens);
            sampling.Cancel();
            await sampler;
            double endRss = ResidentMiB(server.Id);

            var latencies = result.Latencies.Order().ToArray();
            double Percentile(double p) => latencies.Length == 0 ? double.NaN : latencies[Math.Min(latencies.Length - 1, (int)Math.Ceiling(p * latencies.Length) - 1)];
            double growth = (endRss - warmRss) / warmRss;
            Console.WriteLine($"measured {result.Seconds:F1} s after a {warmup:F0} s warm-up: {latencies.Length} requests, {latencies.Length / result.Seconds:F1} requests/s, " +
                              $"{result.CompletionTokens / result.Seconds:F0} completion tokens/s");
            Console.WriteLine($"latency: p50 {Percentile(0.50):F1} ms, p95 {Percentile(0.95):F1} ms, p99 {Percentile(0.99):F1} ms, max {latencies.LastOrDefault():F1} ms");
            Console.WriteLine($"answers: 2xx {result.Status2xx}, 4xx {result.Status4xx}, 5xx {result.Status5xx}, broken connections {result.Broken}");
            Console.WriteLine($"server RSS: {startRss:F0} MiB after start, {warmRss:F0} MiB after warm-up, {endRss:F0} MiB at the end ({growth * 100:+0.0;-0.0}% after warm-up; allowed +{AllowedGrowth * 100:F0}%)");
            Console.WriteLine($"server RSS every 5 s under load: {string.Join(", ", samples.Select(m => m.ToString("F0", CultureInfo.InvariantCulture)))} MiB");
            Console.WriteLine(BenchSupport.LoadLine());
            bool ok = result.Status5xx == 0 && result.Broken == 0 && result.Status4xx == 0 && growth <= AllowedGrowth;
            if (!ok) Console.WriteLine("FAIL: 5xx/4xx answers, broken connections or RSS growth beyond the allowance");
            return ok ? 0 : 1;
        }
        finally
        {
            Stop(server);
        }
    }

    private sealed record LoadResult(List<double> Latencies, int Status2xx, int Status4xx, int Status5xx, int Broken, long CompletionTokens, double Seconds);

    private static async Task<LoadResult> Load(HttpClient http, int clients, double seconds, int maxTokens)
    {
        var latencies = new List<double>();
        int ok = 0, client4xx = 0, server5xx = 0, broken = 0;
        long tokens = 0;
        var watch = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            for (int n = 0; watch.Elapsed < deadline; n++)
            {
                bool chat = (c + n) % 2 == 0;
                var body = chat
                    ? new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = $"Client {c} asks question {n % 7}" }), ["max_tokens"] = maxTokens, ["temperature"] = 0 }
                    : new JsonObject { ["prompt"] = $"Client {c} tells story {n % 7}:", ["max_tokens"] = maxTokens, ["temperature"] = 0 };
                long start = Stopwatch.GetTimestamp();
                try
                {
                    using var response = await http.PostAsync(chat ? "/v1/chat/completions" : "/v1/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
                    string text = await response.Content.ReadAsStringAsync();
                    double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    int status = (int)response.StatusCode;
                    lock (latencies)
                    {
                        latencies.Add(ms);
                        if (status >= 500) server5xx++;
                        else if (status >= 400) client4xx++;
                        else
                        {
                            ok++;
                            tokens += JsonNode.Parse(text)!["usage"]!["completion_tokens"]!.GetValue<int>();
                        }
                    }
                }
                catch (HttpRequestException)
                {
                    lock (latencies) broken++;
                }
            }
        }));
        return new LoadResult(latencies, ok, client4xx, server5xx, broken, tokens, watch.Elapsed.TotalSeconds);
    }

    /// <summary>
    /// The built CLI (same configuration as this bench, or <paramref name="cli"/> to compare another build) serving on a
    /// free port; the address comes from its first line.
    /// </summary>
    private static Process StartServer(string root, string model, string? given, out Uri address)
    {
        var benchDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        string cli = given ?? Path.Combine(root, "src", "SharpTune.Cli", "bin", benchDir.Parent!.Name, benchDir.Name, "SharpTune.Cli");
        if (!File.Exists(cli)) throw new InvalidOperationException($"the CLI is not built at {cli}; run dotnet build -c Release first");
        var start = new ProcessStartInfo(cli) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "serve", "--model", model, "--port", "0", "--model-name", "bench" }) start.ArgumentList.Add(a);
        var process = Process.Start(start) ?? throw new InvalidOperationException("the server did not start");
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) Console.WriteLine($"server stderr: {line}"); };
        process.BeginErrorReadLine();
        string line = process.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"the server exited with {WaitExit(process)} before it served");
        var match = System.Text.RegularExpressions.Regex.Match(line, @" on (http://\S+?/?) ");
        if (!match.Success) throw new InvalidOperationException($"unexpected first line from the server: {line}");
        address = new Uri(match.Groups[1].Value);
        return process;
    }

    private static int WaitExit(Process process)
    {
        process.WaitForExit();
        return process.ExitCode;
    }

    /// <summary>SIGTERM, as a process manager would send it, then the exit code is reported.</summary>
    private static void Stop(Process server)
    {
        if (server.HasExited) return;
        using (var kill = Process.Start("kill", ["-TERM", server.Id.ToString(CultureInfo.InvariantCulture)])) kill.WaitForExit();
        if (!server.WaitForExit(TimeSpan.FromSeconds(40))) server.Kill();
        Console.WriteLine($"server stopped on SIGTERM with exit code {server.ExitCode}");
    }

    /// <summary>VmRSS of another process in MiB (Linux /proc).</summary>
    private static double ResidentMiB(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
    }
}
