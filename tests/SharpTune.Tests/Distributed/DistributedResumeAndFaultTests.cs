using System.Diagnostics;

namespace SharpTune.Tests.Distributed;

/// <summary>Sharded checkpoints resumed with another world size, and a rank killed mid-run.</summary>
public sealed class DistributedResumeAndFaultTests
{
    private static string Config(string dir, string extra = "")
    {
        var path = Path.Combine(dir, "config.yaml");
        File.WriteAllText(path, $"""
            base_model: {Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat")}
            datasets:
              - path: {Path.Combine(TestPaths.RepoRoot, "examples", "data", "chat.jsonl")}
                type: chat_template
            val_set_size: 0
            sequence_len: 96
            excess_length_strategy: truncate
            micro_batch_size: 2
            learning_rate: 2e-3
            lr_scheduler: linear
            bf16: false
            device: cpu
            logging_steps: 1
            seed: 3
            {extra}
            """);
        return path;
    }

    /// <summary>
    /// ZeRO-2 on 2 ranks (accumulation 3) saves at step 3; resumed on 3 ranks (accumulation 2: the same 6 micro-batches
    /// per step), where each rank now owns other parameters and reads its optimizer state out of both old shards.
    /// </summary>
    [Fact]
    public void Zero2CheckpointFromTwoRanksResumesOnThreeAndEndsEqualToTheUninterruptedRun()
    {
        var dir = TestPaths.TempDir();
        var config = Config(dir, "max_steps: 6\nsave_steps: 3\ndeepspeed: {zero_optimization: {stage: 2}}");
        var whole = MpiRun.Run(2, "train", config, "--set", $"output_dir={dir}/two", "--set", "gradient_accumulation_steps=3");
        Assert.True(whole.Code == 0, whole.Err + whole.Out);
        var checkpoint = Path.Combine(dir, "two", "checkpoint-3");
        // The checkpoint holds each rank's optimizer shard and the metadata to put them together.
        Assert.True(File.Exists(Path.Combine(checkpoint, "optimizer-rank-1.safetensors")));
        var metadata = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "zero_shards.json")))!;
        Assert.Equal(2, metadata["world_size"]!.GetValue<int>());
        Assert.Equal(2, metadata["zero_stage"]!.GetValue<int>());
        var resumed = MpiRun.Run(3, "train", config, "--set", $"output_dir={dir}/three", "--set", "gradient_accumulation_steps=2", "--resume", checkpoint);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.Contains("resumed from", resumed.Out);
        Assert.InRange(MpiRun.MaxAbsDiff(Path.Combine(dir, "two", "model.safetensors"), Path.Combine(dir, "three", "model.safetensors")), 0, 1e-6);
        // And a single process resumes from the same sharded checkpoint (all shards consolidated) to the same end.
        var single = MpiRun.Single("train", config, "--set", $"output_dir={dir}/one", "--set", "gradient_accumulation_steps=6", "--resume", checkpoint);
        Assert.True(single.Code == 0, single.Err + single.Out);
        Assert.InRange(MpiRun.MaxAbsDiff(Path.Combine(dir, "two", "model.safetensors"), Path.Combine(dir, "one", "model.safetensors")), 0, 1e-6);
    }

    /// <summary>ZeRO-3 on 2 ranks saves at step 3 (consolidated weights + per-rank optimizer shards); resumed on 3 ranks it ends equal.</summary>
    [Fact]
    public void Zero3CheckpointFromTwoRanksResumesOnThreeAndEndsEqualToTheUninterruptedRun()
    {
        var dir = TestPaths.TempDir();
        var config = Config(dir, "max_steps: 6\nsave_steps: 3\ndeepspeed: {zero_optimization: {stage: 3}}");
        var whole = MpiRun.Run(2, "train", config, "--set", $"output_dir={dir}/two", "--set", "gradient_accumulation_steps=3");
        Assert.True(whole.Code == 0, whole.Err + whole.Out);
        var checkpoint = Path.Combine(dir, "two", "checkpoint-3");
        var metadata = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(checkpoint, "zero_shards.json")))!;
        Assert.Equal(3, metadata["zero_stage"]!.GetValue<int>());
        var resumed = MpiRun.Run(3, "train", config, "--set", $"output_dir={dir}/three", "--set", "gradient_accumulation_steps=2", "--resume", checkpoint);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.InRange(MpiRun.MaxAbsDiff(Path.Combine(dir, "two", "model.safetensors"), Path.Combine(dir, "three", "model.safetensors")), 0, 1e-6);
    }

    /// <summary>
    /// ZeRO-3 QLoRA (NF4 + double quant) on 2 ranks saves at step 3; resumed on 3 ranks, where the quantized base is cut
    /// anew over three owners and the adapter and its optimizer state come from the checkpoint, it ends equal.
    /// </summary>
    [Fact]
    public void Zero3QloraCheckpointFromTwoRanksResumesOnThreeAndEndsEqualToTheUninterruptedRun()
    {
        var dir = TestPaths.TempDir();
        var config = Config(dir, "max_steps: 6\nsave_steps: 3\nadapter: qlora\nload_in_4bit: true\nbnb_4bit_use_double_quant: true\nlora_r: 4\nlora_alpha: 8\n" +
                                 "lora_dropout: 0\nlora_target_linear: true\ndeepspeed: {zero_optimization: {stage: 3}}");
        var whole = MpiRun.Run(2, "train", config, "--set", $"output_dir={dir}/two", "--set", "gradient_accumulation_steps=3");
        Assert.True(whole.Code == 0, whole.Err + whole.Out);
        var checkpoint = Path.Combine(dir, "two", "checkpoint-3");
        Assert.True(File.Exists(Path.Combine(checkpoint, "adapter_model.safetensors")));
        var resumed = MpiRun.Run(3, "train", config, "--set", $"output_dir={dir}/three", "--set", "gradient_accumulation_steps=2", "--resume", checkpoint);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.Contains("resumed from", resumed.Out);
        Assert.InRange(MpiRun.MaxAbsDiff(Path.Combine(dir, "two", "adapter_model.safetensors"), Path.Combine(dir, "three", "adapter_model.safetensors")), 0, 1e-6);
    }

    /// <summary>
    /// kill -9 of rank 1 while training: mpirun and every rank end, non-zero, naming the rank, well within ddp_timeout;
    /// the newest checkpoint is complete and a resume from it finishes.
    /// </summary>
    [Fact]
    public async Task KilledRankEndsTheJobWithinTheTimeoutAndLeavesAResumableCheckpoint()
    {
        var dir = TestPaths.TempDir();
        var output = Path.Combine(dir, "out");
        var config = Config(dir, $"max_steps: 100000\nsave_steps: 2\nsave_total_limit: 2\nddp_timeout: 20\noutput_dir: {output}");
        using var mpirun = Process.Start(MpiRun.StartInfo(2, ["train", config]))!;
        var stdout = mpirun.StandardOutput.ReadToEndAsync();
        var stderr = mpirun.StandardError.ReadToEndAsync();
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (!Directory.Exists(Path.Combine(output, "checkpoint-4")) && DateTime.UtcNow < deadline && !mpirun.HasExited) Thread.Sleep(100);
        Assert.False(mpirun.HasExited, mpirun.HasExited ? await stderr : "");
        var ranks = RankProcesses(mpirun.Id);
        Assert.Equal(2, ranks.Count);
        var clock = Stopwatch.StartNew();
        Process.GetProcessById(ranks[1]).Kill();   // SIGKILL
        bool ended = mpirun.WaitForExit(TimeSpan.FromSeconds(40));
        if (!ended) mpirun.Kill(entireProcessTree: true);
        Assert.True(ended, "mpirun still running 40 s after a rank was killed");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20 + 10), $"the job took {clock.Elapsed} to end");
        Assert.NotEqual(0, mpirun.ExitCode);
        Assert.Matches(@"rank 1\b", await stderr);
        _ = await stdout;
        // mpirun has ended; its ranks are being torn down with it (a few seconds at most, never the timeout).
        var gone = Stopwatch.StartNew();
        while (ranks.Any(IsRunning) && gone.Elapsed < TimeSpan.FromSeconds(10)) Thread.Sleep(100);
        Assert.All(ranks, pid => Assert.False(IsRunning(pid), $"rank process {pid} survived"));
        // The newest complete checkpoint resumes (two more steps, same world size).
        var latest = Directory.GetDirectories(output, "checkpoint-*").Where(d => File.Exists(Path.Combine(d, "trainer_state.json")))
            .OrderByDescending(d => int.Parse(Path.GetFileName(d)["checkpoint-".Length..])).First();
        int step = int.Parse(Path.GetFileName(latest)["checkpoint-".Length..]);
        Assert.True(File.Exists(Path.Combine(latest, "model.safetensors")) && File.Exists(Path.Combine(latest, "optimizer.safetensors")));
        var resumed = MpiRun.Run(2, "train", config, "--set", $"max_steps={step + 2}", "--resume", latest);
        Assert.True(resumed.Code == 0, resumed.Err + resumed.Out);
        Assert.Contains($"done: {step + 2} steps", resumed.Out);
    }

    /// <summary>The rank processes mpirun started (its children running the CLI), ordered by OMPI_COMM_WORLD_RANK.</summary>
    private static List<int> RankProcesses(int mpirunPid)
    {
        var children = new List<(int Pid, int Rank)>();
        foreach (var dir in Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1]) != mpirunPid) continue;
                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                var rank = env.FirstOrDefault(e => e.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal));
                if (rank is not null) children.Add((int.Parse(Path.GetFileName(dir)), int.Parse(rank.Split('=')[1])));
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return children.OrderBy(c => c.Rank).Select(c => c.Pid).ToList();
    }

    /// <summary>Alive and not a zombie waiting to be reaped.</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException) { return false; }
    }
}
