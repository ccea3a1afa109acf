using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using SharpTune.Jobs;

namespace SharpTune.Tests.Jobs;

/// <summary>`sharptune jobs serve` as a real child process, killed with SIGKILL mid-job and started again on the same folder.</summary>
public sealed class JobDurabilityTests
{
    private const string Key = "durable-key-77";

    /// <summary>A `sharptune jobs serve` process and a client for it.</summary>
    private sealed class ServerProcess : IDisposable
    {
        public Process Process { get; }
        public HttpClient Client { get; }

        public ServerProcess(string jobsDir, int maxRunning)
        {
            var info = TrainerCommand.Locate().StartInfo(["jobs", "serve", "--port", "0", "--jobs-dir", jobsDir, "--api-key", Key, "--max-running", maxRunning.ToString(), "--cancel-grace", "20"]);
            info.WorkingDirectory = TestPaths.RepoRoot;   // relative paths in args resolve against the server's folder
            Process = Process.Start(info)!;
            Process.ErrorDataReceived += (_, _) => { };
            Process.BeginErrorReadLine();
            var ready = Process.StandardOutput.ReadLineAsync();
            if (!ready.Wait(TimeSpan.FromSeconds(60)) || ready.Result is not { } line)
                throw new InvalidOperationException("jobs serve did not start");
            var address = Regex.Match(line, @"serving on (http://\S+)").Groups[1].Value;
            Client = Clients.For(new Uri(address), Key);
        }

        /// <summary>SIGKILL: no shutdown code runs.</summary>
        public void KillHard()
        {
            Process.Kill();
            Process.WaitForExit();
        }

        public void Dispose()
        {
            Client.Dispose();
            if (!Process.HasExited) KillHard();
            Process.Dispose();
        }
    }

    [Fact]
    public async Task QueueSurvivesKillNineAndTheInterruptedJobResumesFromItsCheckpoint()
    {
        string dir = TestPaths.TempDir();
        var ids = new List<string>();
        string firstDir = Path.Combine(dir, "user", "run-00");
        using (var server = new ServerProcess(dir, maxRunning: 1))
        {
            for (int i = 0; i < 20; i++)
            {
                var request = i == 0
                    ? JobKit.Sample(a => { a["max_steps"] = 12; a["save_steps"] = 2; a["eval_steps"] = 12; }, "run-00")
                    : JobKit.Sample(runId: $"run-{i:D2}");
                var (status, body) = await JobKit.Post(server.Client, "/run", request.ToJsonString());
                Assert.Equal(HttpStatusCode.OK, status);
                ids.Add(body["id"]!.GetValue<string>());
            }
            // Kill once the first job has a checkpoint but has not finished.
            var deadline = DateTime.UtcNow.AddMinutes(4);
            while (Checkpoint(firstDir) is null && DateTime.UtcNow < deadline) await Task.Delay(50);
            Assert.NotNull(Checkpoint(firstDir));
            server.KillHard();
        }

        using (var server = new ServerProcess(dir, maxRunning: 0))
        {
            var jobs = (await JobKit.Get(server.Client, "/jobs")).Body["jobs"]!.AsArray().Select(j => j!.AsObject()).ToList();
            Assert.Equal(ids.Order(), jobs.Select(j => j["id"]!.GetValue<string>()).Order());   // none lost, none duplicated
            Assert.Equal(19, jobs.Count(j => j["status"]!.GetValue<string>() == "IN_QUEUE"));
            var first = (await JobKit.Get(server.Client, $"/status/{ids[0]}")).Body;
            Assert.Equal("FAILED", first["status"]!.GetValue<string>());
            Assert.StartsWith("worker restarted", first["error"]!.GetValue<string>());
            Assert.True(first["resumable"]!.GetValue<bool>());
            Assert.Empty(Trainers(Path.Combine(firstDir, "config.yaml")));   // the orphaned trainer is gone

            var (retried, answer) = await JobKit.Post(server.Client, $"/retry/{ids[0]}", "");
            Assert.Equal(HttpStatusCode.OK, retried);
            Assert.Equal("IN_QUEUE", answer["status"]!.GetValue<string>());
            Assert.True(answer["resume"]!.GetValue<bool>());
            Assert.Equal(HttpStatusCode.Conflict, (await JobKit.Post(server.Client, $"/retry/{ids[1]}", "")).Status);
            // Only the retried job should run next: cancel the others (queued jobs cancel at once).
            foreach (var id in ids.Skip(1))
                Assert.Equal("CANCELLED", (await JobKit.Post(server.Client, $"/cancel/{id}", "")).Body["status"]!.GetValue<string>());
            server.KillHard();
        }

        string resumedFrom = Checkpoint(firstDir)!;
        using (var server = new ServerProcess(dir, maxRunning: 1))
        {
            var (last, _) = await JobKit.WaitFor(server.Client, ids[0]);
            Assert.Equal("COMPLETED", last["status"]!.GetValue<string>());
            Assert.Equal(2, last["attempts"]!.GetValue<int>());
            string log = File.ReadAllText(Path.Combine(firstDir, "train.log"));
            int step = int.Parse(Path.GetFileName(resumedFrom)["checkpoint-".Length..]);
            Assert.Contains($"resumed from {resumedFrom} at step {step}", log);
            Assert.Contains("train " + Path.Combine(firstDir, "config.yaml") + " --resume", log);
            // The resumed run continues the metrics file: each of the 12 steps logged once.
            var steps = JobOutput.Metrics(firstDir).Where(m => m.ContainsKey("loss")).Select(m => m["step"]!.GetValue<int>());
            Assert.Equal(Enumerable.Range(1, 12), steps);
            Assert.Equal(19, (await JobKit.Get(server.Client, "/health")).Body["jobs"]!["cancelled"]!.GetValue<int>());
        }
    }

    private static string? Checkpoint(string runDir) => SharpTune.Training.Checkpointer.Latest(runDir);

    /// <summary>Live processes whose command line names this config.</summary>
    private static List<int> Trainers(string configPath) =>
        Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(n => int.TryParse(n, out _)).Select(n => int.Parse(n!))
            .Where(pid =>
            {
                try { return File.ReadAllText($"/proc/{pid}/cmdline").Split('\0').Contains(configPath); }
                catch (IOException) { return false; }
                catch (UnauthorizedAccessException) { return false; }
            }).ToList();
}
