using System.Diagnostics;
using SharpTune.SafeTensors;
using SharpTune.Training;
using static SharpTune.Tests.CliRunner;

namespace SharpTune.Tests.Training;

/// <summary>
/// Nothing lost, nothing silent: a finished run is not replaced without a word, a signal leaves a checkpoint and an
/// honest exit code, checkpoint folders are complete or absent whatever moment a process dies at.
/// </summary>
public sealed class RunSafetyTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static string Quickstart => Path.Combine(TestPaths.RepoRoot, "examples", "quickstart.yaml");

    /// <summary>A few small steps of the bundled tiny chat model: saves every step, keeps two checkpoints, no evaluation.</summary>
    internal static string[] Settings(string output, int steps) =>
    [
        "--set", $"output_dir={output}", "--set", $"max_steps={steps}", "--set", "logging_steps=1", "--set", "eval_exact_match_samples=0",
        "--set", "val_set_size=0", "--set", "evals_per_epoch=null", "--set", "save_steps=1", "--set", "save_total_limit=2",
        "--set", "micro_batch_size=4", "--set", "warmup_steps=1", "--set", $"dataset_prepared_path={Path.Combine(output, "..", "prepared")}",
    ];

    private static string Snapshot(string dir) => ConfigTests.HostileConfigTests.Snapshot(dir);

    [Fact]
    public void AFinishedRunIsProtectedUntilResumeOrOverwrite()
    {
        string output = Path.Combine(TestPaths.TempDir(), "run");
        var first = Run(["train", Quickstart, .. Settings(output, 2)]);
        Assert.True(first.Code == 0, first.Err + first.Out);
        string finished = Snapshot(output);

        var again = Run(["train", Quickstart, .. Settings(output, 1)]);
        Assert.Equal($"error: output_dir {output} holds a finished run (model.safetensors); pass --resume to continue it, a new output_dir, or --overwrite to replace it\n", again.Err);
        Assert.Equal(2, again.Code);
        Assert.Equal(finished, Snapshot(output));

        // --resume of a finished run says so and changes nothing (no "final loss ;").
        var resumed = Run(["train", Quickstart, .. Settings(output, 2), "--resume"]);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.Matches($@"(?m)^done: the run in {System.Text.RegularExpressions.Regex.Escape(output)} had already finished at step 2, final loss \d+\.\d{{4}}; nothing to resume$", resumed.Out);
        Assert.Equal(finished, Snapshot(output));

        var both = Run(["train", Quickstart, .. Settings(output, 1), "--resume", "--overwrite"]);
        Assert.Equal("error: --resume and --overwrite contradict each other; pass one of them\n", both.Err);
        Assert.Equal(2, both.Code);

        var replaced = Run(["train", Quickstart, .. Settings(output, 1), "--overwrite"]);
        Assert.True(replaced.Code == 0, replaced.Err + replaced.Out);
        Assert.Contains($"--overwrite: removed the earlier run in {output} (2 checkpoint(s), final model)", replaced.Out);
        Assert.Equal(new[] { "checkpoint-1" }, Directory.GetDirectories(output, "checkpoint-*").Select(Path.GetFileName).ToArray());
    }

    [Fact]
    public void AnInterruptedRunAsksForResumeAndADamagedNewestCheckpointIsPassedOverWithAWarning()
    {
        string output = Path.Combine(TestPaths.TempDir(), "run");
        var first = Run(["train", Quickstart, .. Settings(output, 3)]);
        Assert.True(first.Code == 0, first.Err + first.Out);
        // What a kill between the last checkpoint and the final save leaves; then checkpoint-3 is damaged as well.
        foreach (var f in RunDirectory.FinalModelFiles.Concat(["config.json"])) File.Delete(Path.Combine(output, f));
        string state = Path.Combine(output, "checkpoint-3", "trainer_state.json");
        File.WriteAllText(state, File.ReadAllText(state)[..40]);
        string interrupted = Snapshot(output);

        var fresh = Run(["train", Quickstart, .. Settings(output, 3)]);
        Assert.Equal($"error: output_dir {output} holds an interrupted run (checkpoint-3, no final model); pass --resume to continue it, a new output_dir, or --overwrite to replace it\n", fresh.Err);
        Assert.Equal(2, fresh.Code);
        Assert.Equal(interrupted, Snapshot(output));

        var named = Run(["train", Quickstart, .. Settings(output, 3), "--resume", Path.Combine(output, "checkpoint-3")]);
        Assert.Equal($"error: {Path.Combine(output, "checkpoint-3")}: damaged checkpoint: trainer_state.json is not valid JSON (truncated?); resume from another checkpoint-* folder\n", named.Err);
        Assert.Equal(2, named.Code);

        var resumed = Run(["train", Quickstart, .. Settings(output, 3), "--resume"]);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.Contains($"warning: {Path.Combine(output, "checkpoint-3")}: damaged checkpoint (trainer_state.json is not valid JSON (truncated?)); passed over for an older one\n", resumed.Err);
        Assert.Contains($"resumed from {Path.Combine(output, "checkpoint-2")} at step 2", resumed.Out);
        Assert.Matches(@"(?m)^done: 3 steps, final loss \d+\.\d{4}; saved to ", resumed.Out);
        Assert.True(File.Exists(Path.Combine(output, "model.safetensors")));
        Assert.Null(Checkpointer.Problem(Path.Combine(output, "checkpoint-3")));
    }

    /// <summary>The built CLI as a child, SIGINT not ignored (a test host started in the background passes it on ignored).</summary>
    private static Process StartTraining(IEnumerable<string> args, bool oneThread = false)
    {
        var start = new ProcessStartInfo("/usr/bin/env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // Bit-equal weights across processes need the same reduction order in every kernel: one thread each.
        if (oneThread) start.Environment["OMP_NUM_THREADS"] = "1";
        foreach (var a in new[] { "--default-signal=INT", BuiltExecutable }.Concat(args)) start.ArgumentList.Add(a);
        return Process.Start(start)!;
    }

    [SkippableTheory]
    [InlineData("SIGINT", 2, 130)]
    [InlineData("SIGTERM", 15, 143)]
    public void ASignalCheckpointsTheFinishedStepAndExitsWithItsCode(string name, int signal, int exitCode)
    {
        if (!OperatingSystem.IsLinux()) throw new SkipException("signals are sent with kill(2) on Linux");
        string output = Path.Combine(TestPaths.TempDir(), "run");
        using var child = StartTraining(["train", Quickstart, .. Settings(output, 400), "--set", "save_steps=1000"]);
        var stdout = new System.Text.StringBuilder();
        var sawStep = new TaskCompletionSource();
        child.OutputDataReceived += (_, e) => { if (e.Data is null) return; lock (stdout) stdout.AppendLine(e.Data); if (e.Data.StartsWith("step ")) sawStep.TrySetResult(); };
        child.BeginOutputReadLine();
        var stderr = child.StandardError.ReadToEndAsync();
        Assert.True(sawStep.Task.Wait(TimeSpan.FromMinutes(2)), "no training step within 2 minutes");
        Assert.Equal(0, Kill(child.Id, signal));
        Assert.True(child.WaitForExit(TimeSpan.FromMinutes(1)), $"{name} did not stop the run");
        child.WaitForExit();
        Assert.Equal(exitCode, child.ExitCode);
        string err = stderr.Result;
        var stopped = System.Text.RegularExpressions.Regex.Match(err, @"(?m)^interrupted at step (\d+); resume with --resume \(checkpoint (.+)\)$");
        Assert.True(stopped.Success, err);
        int step = int.Parse(stopped.Groups[1].Value);
        Assert.Equal(Path.Combine(output, $"checkpoint-{step}"), stopped.Groups[2].Value);
        Assert.Null(Checkpointer.Problem(stopped.Groups[2].Value));
        // The checkpoint holds the last step the log shows finished, and no top-level model says "finished".
        Assert.Matches($@"(?m)^step +{step}/400 ", stdout.ToString());
        Assert.DoesNotMatch($@"(?m)^step +{step + 1}/400 ", stdout.ToString());
        Assert.DoesNotContain("done:", stdout.ToString());
        Assert.False(RunDirectory.HasFinalModel(output));
    }

    /// <summary>Runs the built CLI to its end on one thread (as every process of the crash test runs).</summary>
    private static (int Code, string Out, string Err) RunOneThread(IEnumerable<string> args)
    {
        using var child = StartTraining(args, oneThread: true);
        var stdout = child.StandardOutput.ReadToEndAsync();
        var stderr = child.StandardError.ReadToEndAsync();
        Assert.True(child.WaitForExit(TimeSpan.FromMinutes(5)), "train did not finish in 5 minutes");
        child.WaitForExit();
        return (child.ExitCode, stdout.Result, stderr.Result);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    [Fact]
    public void KilledDuringRotationLeavesOnlyCompleteCheckpointsAndTheNextStartRemovesTempFolders()
    {
        // What a kill -9 in the middle of a save and of a rotation leaves: a half-written temp folder and a folder renamed aside.
        string output = Path.Combine(TestPaths.TempDir(), "run");
        var first = Run(["train", Quickstart, .. Settings(output, 2)]);
        Assert.True(first.Code == 0, first.Err + first.Out);
        foreach (var f in RunDirectory.FinalModelFiles.Concat(["config.json"])) File.Delete(Path.Combine(output, f));
        int dead = DeadPid();
        string temp = Path.Combine(output, $".checkpoint-3.tmp-{dead}");
        Directory.CreateDirectory(temp);
        File.WriteAllBytes(Path.Combine(temp, "model.safetensors"), new byte[100]);
        string aside = Path.Combine(output, $".checkpoint-1.old-{dead}");
        Directory.CreateDirectory(aside);
        File.WriteAllText(Path.Combine(aside, "optimizer.json"), "{}");
        Assert.Equal("checkpoint-2", Path.GetFileName(Checkpointer.Latest(output)));

        var resumed = Run(["train", Quickstart, .. Settings(output, 3), "--resume"]);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.Contains($"removed 2 unfinished checkpoint folder(s) left in {output} by a killed run", resumed.Out);
        Assert.Empty(Directory.GetDirectories(output, ".checkpoint-*"));
        Assert.Equal(new[] { "checkpoint-2", "checkpoint-3" }, Directory.GetDirectories(output, "checkpoint-*").Select(Path.GetFileName).Order().ToArray());
    }

    /// <summary>The sub-folders of <paramref name="dir"/> matching <paramref name="pattern"/>, in order; none when it does not exist (yet).</summary>
    private static List<string> Folders(string dir, string pattern) =>
        Directory.Exists(dir) ? Directory.GetDirectories(dir, pattern).Order(StringComparer.Ordinal).ToList() : [];

    /// <summary>A process id no process has now (a child that has exited).</summary>
    internal static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("/bin/true") { UseShellExecute = false })!;
        p.WaitForExit();
        return p.Id;
    }

    /// <summary>
    /// The acceptance crash test: kill -9 at random moments of a run saving every step with save_total_limit 2. After
    /// each kill every checkpoint folder present is complete and loads; after each start no temp folder of an earlier
    /// process remains; the run resumed to its end has the weights of the uninterrupted run, bit for bit.
    /// Default: 3 kills (about a minute on 2 loaded cores); SHARPTUNE_CRASH_KILLS=20 runs the full acceptance count.
    /// </summary>
    [SkippableFact]
    public void KillNineAtRandomMomentsNeverLeavesABrokenCheckpointAndResumesToTheSameWeights()
    {
        if (!OperatingSystem.IsLinux()) throw new SkipException("kill -9 of a child process is exercised on Linux");
        int kills = int.TryParse(Environment.GetEnvironmentVariable("SHARPTUNE_CRASH_KILLS"), out var k) && k > 0 ? k : 3;
        int steps = Math.Max(24, 6 * kills);
        string root = TestPaths.TempDir();
        string straight = Path.Combine(root, "straight"), crashed = Path.Combine(root, "crashed");
        var reference = RunOneThread(["train", Quickstart, .. Settings(straight, steps)]);
        Assert.True(reference.Code == 0, reference.Err + reference.Out);

        var random = new Random(kills);
        int done = 0;
        var report = new List<string>();
        for (int attempt = 0; done < kills && attempt < kills * 3; attempt++)
        {
            bool resume = Checkpointer.Latest(crashed) is not null;
            using var child = StartTraining(["train", Quickstart, .. Settings(crashed, steps), .. resume ? new[] { "--resume" } : []], oneThread: true);
            var firstStep = new TaskCompletionSource();
            child.OutputDataReceived += (_, e) => { if (e.Data?.StartsWith("step ") == true) firstStep.TrySetResult(); };
            child.ErrorDataReceived += (_, _) => { };
            child.BeginOutputReadLine();
            child.BeginErrorReadLine();
            // Half the kills land anywhere in start-up and training, half after the first step (inside saves and rotations).
            if (attempt % 2 == 0) Thread.Sleep(random.Next(300, 4000));
            else if (firstStep.Task.Wait(TimeSpan.FromMinutes(2))) Thread.Sleep(random.Next(0, 1000));
            if (child.HasExited) break;   // finished before the kill: the run is complete
            child.Kill();
            child.WaitForExit();
            done++;
            // A kill during start-up may land before output_dir exists: then there is nothing on disk to check.
            var present = Folders(crashed, "checkpoint-*");
            foreach (var dir in present)
            {
                Assert.Null(Checkpointer.Problem(dir));
                using var weights = SafeTensorsCheckpoint.Open(dir);
                Assert.NotEmpty(weights.Names);
            }
            // Temp folders may only be the killed process's own once it has started (its first step printed): every earlier
            // one was removed at its start. A kill inside start-up may land before that removal, which the next start then does.
            if (firstStep.Task.IsCompleted) Assert.All(Folders(crashed, ".checkpoint-*"), d => Assert.EndsWith($"-{child.Id}", d));
            report.Add($"kill {done}: {string.Join(",", present.Select(Path.GetFileName))}");
        }
        var finish = RunOneThread(["train", Quickstart, .. Settings(crashed, steps), .. Checkpointer.Latest(crashed) is null ? Array.Empty<string>() : ["--resume"]]);
        Assert.True(finish.Code == 0, finish.Err + finish.Out + string.Join("\n", report));
        // A kill that landed after the final save leaves a finished run: the last start then says so.
        Assert.Matches($"(?m)^done: ({steps} steps|the run in .* had already finished at step {steps})", finish.Out);
        Assert.Empty(Directory.GetDirectories(crashed, ".checkpoint-*"));
        output.WriteLine($"{done} kills landed in a {steps}-step run: " + string.Join("; ", report));
        Assert.True(done >= Math.Min(kills, 2), $"only {done} kills landed: " + string.Join("; ", report));

        using var expected = SafeTensorsCheckpoint.Open(straight);
        using var actual = SafeTensorsCheckpoint.Open(crashed);
        Assert.Equal(expected.Names.Order(), actual.Names.Order());
        foreach (var name in expected.Names)
        {
            using var a = expected.Load(name);
            using var b = actual.Load(name);
            Assert.True(a.eq(b).all().item<bool>(), $"{name} differs after {done} kills: {string.Join("; ", report)}");
        }
    }
}
