using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Distributed;
using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Issue #15's memory and throughput figures for sharded training: real `sharptune train` ranks under mpirun on a
/// random-weight model of a ≥ 50M llama shape, full fine-tune, AdamW. For DDP, ZeRO-2 and ZeRO-3 it polls every rank's
/// VmHWM from /proc/PID/status (also as it stood when the last step was logged, before the final consolidating save),
/// reads each rank's optimizer-state file from the final checkpoint, and prints per-rank figures and their ratio to
/// DDP's. Then tokens/s of one process with 2 threads against 2 ranks with 1 thread each over the same global batches.
/// The first logged step is a warm-up and left out of tokens/s.
/// </summary>
public static class ZeroMemoryBench
{
    public const string Mode = "zero-memory";
    public const string Usage = "zero-memory [steps=4] [seq=256] [--shape llama-56m-untied|small|CONFIG] [--nproc 2]   peak RSS and optimizer state per rank: DDP vs ZeRO-2 vs ZeRO-3 (mpirun); tokens/s 1 process × 2 threads vs N ranks × 1 thread";

    private sealed record Launch(string Name, int Ranks, int Threads, int Accumulation, string Keys);

    private sealed record Measured(long[] PeakBytes, long[] PeakBeforeSaveBytes, long[] OptimizerBytes, double TokensPerSecond);

    public static int Run(string[] args)
    {
        string shape = "llama-56m-untied";
        int nproc = 2;
        var positional = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--shape" when i + 1 < args.Length: shape = args[++i]; break;
                case "--nproc" when i + 1 < args.Length: nproc = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal))
                    {
                        Console.Error.WriteLine($"error: unknown option '{args[i]}'; usage: {Usage}");
                        return 2;
                    }
                    positional.Add(args[i]);
                    break;
            }
        }
        int steps = positional.Count > 0 ? int.Parse(positional[0], CultureInfo.InvariantCulture) : 4;
        int seq = positional.Count > 1 ? int.Parse(positional[1], CultureInfo.InvariantCulture) : 256;
        if (steps < 2 || seq < 8 || nproc < 2)
        {
            Console.Error.WriteLine("error: steps must be ≥ 2 (the first is a warm-up), seq ≥ 8 and --nproc ≥ 2");
            return 2;
        }
        var cli = Path.Combine(BenchSupport.RepoRoot(), "src", "SharpTune.Cli", "bin", "Release", "net10.0", "SharpTune.Cli");
        if (!File.Exists(cli))
        {
            Console.Error.WriteLine($"error: the CLI is not built at {cli}; run `dotnet build -c Release` first");
            return 2;
        }
        var root = Path.Combine(Path.GetTempPath(), "sharptune-bench-zero-" + Guid.NewGuid().ToString("N"));
        try
        {
            var modelDir = Path.Combine(root, "model");
            using (var model = new CausalLM(ModelFamilies.ParseConfig(BenchShapes.Resolve(shape), $"shape {shape}"), ScalarType.Float32))
            {
                RandomWeights.Initialize(model, 1);
                ModelIO.Save(model, modelDir);
                string what = BenchShapes.Known.TryGetValue(shape, out var d) ? d : shape;
                Console.WriteLine($"model: {what}; {model.parameters().Sum(p => p.numel()) / 1e6:F1}M parameters, float32, random weights, full fine-tune, AdamW");
            }
            CompanionFiles.CopyMissing(Path.Combine(BenchSupport.RepoRoot(), "examples", "models", "tiny-chat"), modelDir);
            var data = Path.Combine(root, "corpus.jsonl");
            BenchSupport.WriteRandomWordCorpus(data, seq * steps * nproc * 4);
            Console.WriteLine(BenchSupport.LoadLine());
            Console.WriteLine($"{steps} steps, seq {seq}, micro_batch 1, global batch {nproc} sequences; peak = VmHWM polled from /proc/PID/status");

            var memoryRuns = new[]
            {
                new Launch("DDP", nproc, 1, 1, ""),
                new Launch("ZeRO-2", nproc, 1, 1, "deepspeed:\n  zero_optimization:\n    stage: 2"),
                new Launch("ZeRO-3", nproc, 1, 1, "deepspeed:\n  zero_optimization:\n    stage: 3"),
            };
            var results = new Dictionary<string, Measured>();
            foreach (var launch in memoryRuns)
            {
                var measured = Train(cli, root, modelDir, data, launch, steps, seq);
                if (measured is null) return 1;
                results[launch.Name] = measured;
            }
            var ddp = results["DDP"];
            Console.WriteLine($"{"run",-8} {"rank",4} {"peak RSS",10} {"before save",12} {"optimizer",10}   ratio to DDP (peak, before save, optimizer)");
            foreach (var (name, m) in results)
                for (int r = 0; r < m.PeakBytes.Length; r++)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{name,-8} {r,4} {MiB(m.PeakBytes[r]),6:F0} MiB {MiB(m.PeakBeforeSaveBytes[r]),8:F0} MiB {MiB(m.OptimizerBytes[r]),6:F0} MiB   {(double)m.PeakBytes[r] / ddp.PeakBytes[r],5:F2}x {(double)m.PeakBeforeSaveBytes[r] / ddp.PeakBeforeSaveBytes[r],5:F2}x {(double)m.OptimizerBytes[r] / ddp.OptimizerBytes[r],5:F2}x"));
            var zero3 = results["ZeRO-3"];
            var zero2 = results["ZeRO-2"];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ZeRO-3 / DDP peak RSS, worst rank: {Enumerable.Range(0, nproc).Max(r => (double)zero3.PeakBytes[r] / ddp.PeakBytes[r]):F2}x (target ≤ 0.60x); before the final save: {Enumerable.Range(0, nproc).Max(r => (double)zero3.PeakBeforeSaveBytes[r] / ddp.PeakBeforeSaveBytes[r]):F2}x"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ZeRO-2 / DDP optimizer state, worst rank: {Enumerable.Range(0, nproc).Max(r => (double)zero2.OptimizerBytes[r] / ddp.OptimizerBytes[r]):F3}x (1/world = {1.0 / nproc:F3}x)"));

            var single = Train(cli, root, modelDir, data, new Launch("single", 1, nproc, nproc, ""), steps, seq);
            if (single is null) return 1;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"tokens/s (whole job, steps 2..{steps}): 1 process × {nproc} threads {single.TokensPerSecond:F0}; {nproc} ranks × 1 thread: DDP {ddp.TokensPerSecond:F0} ({ddp.TokensPerSecond / single.TokensPerSecond:F2}x), ZeRO-2 {zero2.TokensPerSecond:F0}, ZeRO-3 {zero3.TokensPerSecond:F0}"));
            Console.WriteLine(BenchSupport.LoadLine());
            return 0;
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private static double MiB(long bytes) => bytes / 1048576.0;

    private static Measured? Train(string cli, string root, string modelDir, string data, Launch launch, int steps, int seq)
    {
        var output = Path.Combine(root, "out-" + launch.Name);
        var config = Path.Combine(root, launch.Name + ".yaml");
        File.WriteAllText(config, string.Join('\n',
            $"base_model: {modelDir}", "datasets:", $"  - path: {data}", "    type: pretrain", "val_set_size: 0",
            $"sequence_len: {seq}", "micro_batch_size: 1", $"gradient_accumulation_steps: {launch.Accumulation}", $"max_steps: {steps}",
            "learning_rate: 1e-4", "optimizer: adamw_torch", "bf16: false", "device: cpu", "logging_steps: 1", $"save_steps: {steps}",
            $"output_dir: {output}", launch.Keys) + "\n");
        var previous = Environment.GetEnvironmentVariable("OMP_NUM_THREADS");
        Environment.SetEnvironmentVariable("OMP_NUM_THREADS", launch.Threads.ToString(CultureInfo.InvariantCulture));
        ProcessStartInfo start;
        try
        {
            start = launch.Ranks == 1 ? new ProcessStartInfo(cli, ["train", config]) : MpirunCommand.Build(launch.Ranks, null, null, cli, [config]);
            start.Environment["OMP_NUM_THREADS"] = launch.Threads.ToString(CultureInfo.InvariantCulture);
        }
        finally
        {
            Environment.SetEnvironmentVariable("OMP_NUM_THREADS", previous);
        }
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var peak = new Dictionary<int, long>();
        var beforeSave = new Dictionary<int, long>();
        var metrics = Path.Combine(output, "metrics.jsonl");
        string lastStep = $"\"step\":{steps},";
        while (!process.HasExited)
        {
            bool lastStepLogged = File.Exists(metrics) && ReadShared(metrics).Contains(lastStep, StringComparison.Ordinal);
            foreach (var (pid, rank) in Ranks(process.Id, launch.Ranks == 1))
            {
                if (BenchSupport.ProcessStatusBytes(pid, "VmHWM") is not { } hwm) continue;
                peak[rank] = Math.Max(peak.GetValueOrDefault(rank), hwm);
                if (!lastStepLogged) beforeSave[rank] = peak[rank];
            }
            Thread.Sleep(25);
        }
        process.WaitForExit();
        if (process.ExitCode != 0 || peak.Count != launch.Ranks)
        {
            Console.Error.WriteLine($"{launch.Name}: train failed (exit {process.ExitCode}, {peak.Count} of {launch.Ranks} ranks seen)\n{stderr.Result}{stdout.Result}");
            return null;
        }
        var checkpoint = Path.Combine(output, $"checkpoint-{steps}");
        var optimizer = Enumerable.Range(0, launch.Ranks)
            .Select(r => Path.Combine(checkpoint, r == 0 ? "optimizer.safetensors" : $"optimizer-rank-{r}.safetensors"))
            .Select(f => File.Exists(f) ? new FileInfo(f).Length : 0).ToArray();
        // Under DDP every rank holds the whole state but only rank 0 writes it.
        if (launch.Keys.Length == 0) Array.Fill(optimizer, optimizer[0]);
        var rates = File.ReadAllLines(metrics).Select(l => JsonNode.Parse(l)!).Where(j => j["tokens_per_second"] is not null && j["step"]!.GetValue<int>() > 1)
            .Select(j => j["tokens_per_second"]!.GetValue<double>()).ToArray();
        var order = Enumerable.Range(0, launch.Ranks).ToArray();
        return new Measured(order.Select(r => peak[r]).ToArray(), order.Select(r => beforeSave.GetValueOrDefault(r, peak[r])).ToArray(), optimizer, rates.Length > 0 ? rates.Average() : double.NaN);
    }

    private static string ReadShared(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return new StreamReader(stream).ReadToEnd();
        }
        catch (IOException) { return ""; }
    }

    /// <summary>The training processes below <paramref name="launcher"/> (mpirun's children, or the launcher itself) with their rank.</summary>
    private static IEnumerable<(int Pid, int Rank)> Ranks(int launcher, bool launcherIsTheRank)
    {
        if (launcherIsTheRank)
        {
            yield return (launcher, 0);
            yield break;
        }
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                parents[pid] = int.Parse(fields[1], CultureInfo.InvariantCulture);
            }
            catch (IOException) { }
        }
        foreach (var (pid, _) in parents)
        {
            bool below = false;
            for (int p = pid, hops = 0; parents.TryGetValue(p, out int parent) && hops < 8; p = parent, hops++)
                if (parent == launcher) { below = true; break; }
            if (!below) continue;
            int? rank = null;
            try
            {
                foreach (var variable in File.ReadAllText($"/proc/{pid}/environ").Split('\0'))
                    if (variable.StartsWith("OMPI_COMM_WORLD_RANK=", StringComparison.Ordinal)) rank = int.Parse(variable[21..], CultureInfo.InvariantCulture);
                if (rank is null || !File.ReadAllText($"/proc/{pid}/comm").StartsWith("SharpTune.Cli", StringComparison.Ordinal)) continue;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            yield return (pid, rank.Value);
        }
    }
}
