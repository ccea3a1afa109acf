using System.Diagnostics;
using System.Globalization;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Peak memory of loading a sharded F32 checkpoint through <see cref="SafeTensorsCheckpoint.Load(string, ScalarType?)"/>.
/// The parent writes the checkpoint; a fresh child process loads every tensor and keeps them all, so its resident set
/// holds nothing but the runtime and what loading cost. Target: peak RSS growth / weight bytes ≤ 1.3.
/// </summary>
public static class SafeTensorsLoadBench
{
    public const string Mode = "safetensors-load";
    public const string ChildMode = "safetensors-load-child";
    public const string Usage = "safetensors-load [sizeMB=320]   write a sharded random F32 checkpoint, load it in a fresh process, report peak RSS / weights";
    private const double TargetRatio = 1.3;

    public static int Run(string[] args)
    {
        var sizeMb = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 320;
        if (sizeMb < 16)
        {
            Console.Error.WriteLine("error: sizeMB must be at least 16");
            return 2;
        }
        var dir = Path.Combine(Path.GetTempPath(), "sharptune-bench-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var (tensorCount, expectedSum) = WriteCheckpoint(dir, sizeMb);
            var shards = Directory.GetFiles(dir, "*.safetensors").Length;
            Console.WriteLine($"checkpoint: {sizeMb} MiB of random F32 in {tensorCount} tensors, {shards} shards ({dir})");
            return RunChildProcess(dir, expectedSum);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Mixed shapes like a transformer's (square projections, wide MLP matrices, small norms), about sizeMb in all.</summary>
    private static (int Count, double Sum) WriteCheckpoint(string dir, int sizeMb)
    {
        manual_seed(1234);
        var target = (long)sizeMb << 20;
        var tensors = new List<KeyValuePair<string, Tensor>>();
        long written = 0;
        for (var layer = 0; written < target; layer++)
        {
            long[][] shapes = [[1024, 1024], [2816, 1024], [1024, 2816], [1024]];
            string[] names = ["self_attn.q_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight", "input_layernorm.weight"];
            for (var i = 0; i < shapes.Length && written < target; i++)
            {
                var t = randn(shapes[i]);
                tensors.Add(new($"model.layers.{layer}.{names[i]}", t));
                written += t.numel() * 4;
            }
        }
        var sum = tensors.Sum(kv => kv.Value.sum(type: ScalarType.Float64).item<double>());
        // Two or more shards: cap each at a little over half the checkpoint.
        SafeTensorsWriter.SaveSharded(dir, tensors, maxShardBytes: written / 2 + (8 << 20));
        foreach (var (_, t) in tensors) t.Dispose();
        return (tensors.Count, sum);
    }

    private static int RunChildProcess(string dir, double expectedSum)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var start = new ProcessStartInfo(self) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            start.ArgumentList.Add(typeof(SafeTensorsLoadBench).Assembly.Location);
        start.ArgumentList.Add(ChildMode);
        start.ArgumentList.Add(dir);
        start.ArgumentList.Add(expectedSum.ToString("R", CultureInfo.InvariantCulture));
        using var child = Process.Start(start) ?? throw new InvalidOperationException("child did not start");
        child.WaitForExit();
        return child.ExitCode;
    }

    public static int RunChild(string[] args)
    {
        var dir = args[0];
        var expectedSum = double.Parse(args[1], CultureInfo.InvariantCulture);
        WarmUp();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        BenchSupport.ResetPeakRss();
        var before = BenchSupport.StatusBytes("VmRSS");

        var clock = Stopwatch.StartNew();
        var loaded = new List<Tensor>();
        long weightBytes = 0;
        using (var checkpoint = SafeTensorsCheckpoint.Open(dir))
        {
            foreach (var name in checkpoint.Names)
            {
                var t = checkpoint.Load(name);
                weightBytes += t.numel() * t.element_size();
                loaded.Add(t);
            }
        }
        var seconds = clock.Elapsed.TotalSeconds;
        var peak = BenchSupport.StatusBytes("VmHWM");
        var after = BenchSupport.StatusBytes("VmRSS");

        var sum = loaded.Sum(t => t.sum(type: ScalarType.Float64).item<double>());
        var ratio = (double)(peak - before) / weightBytes;
        Console.WriteLine($"tensors loaded:          {loaded.Count}");
        Console.WriteLine($"weights bytes:           {weightBytes} ({weightBytes / 1048576.0:F1} MiB)");
        Console.WriteLine($"RSS before loading:      {before / 1048576.0:F1} MiB");
        Console.WriteLine($"peak RSS (VmHWM):        {peak / 1048576.0:F1} MiB");
        Console.WriteLine($"RSS after loading:       {after / 1048576.0:F1} MiB");
        Console.WriteLine($"peak - before:           {(peak - before) / 1048576.0:F1} MiB");
        Console.WriteLine($"ratio peak/weights:      {ratio:F3} (target <= {TargetRatio})");
        Console.WriteLine($"load time:               {seconds:F2} s ({weightBytes / seconds / 1e9:F2} GB/s)");
        var sumMatches = Math.Abs(sum - expectedSum) <= 1e-6 * Math.Max(1, Math.Abs(expectedSum));
        Console.WriteLine($"checksum:                {(sumMatches ? "ok" : "MISMATCH")} (sum {sum:R}, written {expectedSum:R})");
        foreach (var t in loaded) t.Dispose();
        return sumMatches && ratio <= TargetRatio ? 0 : 1;
    }

    /// <summary>Loads libtorch and JIT-compiles the load path on a tiny file, so the baseline RSS already includes them.</summary>
    private static void WarmUp()
    {
        var dir = Path.Combine(Path.GetTempPath(), "sharptune-bench-warmup-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var small = ones(4, 4);
            SafeTensorsWriter.Save(Path.Combine(dir, "model.safetensors"), [new("w", small)]);
            using var checkpoint = SafeTensorsCheckpoint.Open(dir);
            using var loaded = checkpoint.Load("w");
            _ = loaded.sum(type: ScalarType.Float64).item<double>();
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

}
