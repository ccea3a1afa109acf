using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Modeling;
using SharpTune.Modeling.Quantization;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Memory of loading a Llama-3.2-1B-shaped model (random weights, init-model's code path) in fp32, int8 and NF4 with
/// double quantization. Each load runs in a fresh child process, which reports its peak RSS during the load, the
/// resident bytes of the quantized linear layers and of the whole model. Targets (NF4+DQ): linear layers ≤ 0.135× their
/// fp32 bytes; whole-process peak RSS ≤ 0.4× that of the fp32 load.
/// </summary>
public static class QuantizationBench
{
    public const string Mode = "quant";
    public const string ChildMode = "quant-child";
    public const string Usage = "quant [modelDir]   load a random Llama-3.2-1B-shaped model in fp32 / int8 / NF4+DQ in child processes, report memory (writes ~5 GB to modelDir or a temp dir)";
    private const double LinearTarget = 0.135, PeakTarget = 0.4;
    private static readonly string[] Loads = ["fp32", "int8", "nf4-dq"];

    public static int Run(string[] args)
    {
        var given = args.Length > 0 ? args[0] : null;
        var dir = given ?? Path.Combine(Path.GetTempPath(), "sharptune-quant-bench-" + Guid.NewGuid().ToString("N"));
        try
        {
            if (!File.Exists(Path.Combine(dir, "config.json")))
            {
                var free = new DriveInfo(Path.GetPathRoot(Path.GetFullPath(dir))!).AvailableFreeSpace;
                Console.WriteLine($"free disk: {free / 1e9:F1} GB");
                if (free < 7_000_000_000)
                {
                    Console.Error.WriteLine($"error: {dir}: needs ~5 GB free for the fp32 checkpoint, {free / 1e9:F1} GB available");
                    return 2;
                }
                WriteModel(dir);
            }
            else
            {
                Console.WriteLine($"reusing the model in {dir}");
            }
            var results = new Dictionary<string, ChildResult>();
            foreach (var load in Loads)
            {
                var result = RunChild(dir, load);
                if (result is null) return 1;
                results[load] = result;
            }
            return Report(results);
        }
        finally
        {
            if (given is null && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>As `sharptune init-model --arch llama --preset llama-3.2-1b`: random weights, fp32, saved in shards.</summary>
    private static void WriteModel(string dir)
    {
        var clock = Stopwatch.StartNew();
        var family = ModelFamilies.Get("llama", "bench");
        var json = (JsonObject)family.Presets["llama-3.2-1b"].DeepClone();
        json["torch_dtype"] = "float32";
        var config = ModelFamilies.ParseConfig(json, "preset llama-3.2-1b");
        using var model = new CausalLM(config, ScalarType.Float32);
        RandomWeights.Initialize(model, seed: 0);
        ModelIO.Save(model, dir);
        long count = model.parameters().Sum(p => p.numel());
        Console.WriteLine($"wrote llama-3.2-1b shape: {count:N0} parameters, fp32, to {dir} in {clock.Elapsed.TotalSeconds:F0} s");
    }

    private sealed record ChildResult(long Before, long Peak, long After, long LinearBytes, long LinearFp32Bytes, long ModelBytes, double Seconds);

    private static ChildResult? RunChild(string dir, string load)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var start = new ProcessStartInfo(self) { UseShellExecute = false, RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            start.ArgumentList.Add(typeof(QuantizationBench).Assembly.Location);
        start.ArgumentList.Add(ChildMode);
        start.ArgumentList.Add(dir);
        start.ArgumentList.Add(load);
        using var child = Process.Start(start) ?? throw new InvalidOperationException("child did not start");
        ChildResult? result = null;
        while (child.StandardOutput.ReadLine() is { } line)
        {
            if (line.StartsWith("RESULT ", StringComparison.Ordinal))
            {
                var f = line.Split(' ')[1..].Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
                result = new ChildResult((long)f[0], (long)f[1], (long)f[2], (long)f[3], (long)f[4], (long)f[5], f[6]);
            }
            else
            {
                Console.WriteLine($"  [{load}] {line}");
            }
        }
        child.WaitForExit();
        if (child.ExitCode != 0 || result is null)
        {
            Console.Error.WriteLine($"error: the {load} child exited with {child.ExitCode}");
            return null;
        }
        return result;
    }

    private static int Report(Dictionary<string, ChildResult> results)
    {
        static string MiB(long bytes) => $"{bytes / 1048576.0,9:F1}";
        var fp32 = results["fp32"];
        Console.WriteLine();
        Console.WriteLine("load     load s  RSS before MiB  peak RSS MiB  peak/fp32  peak-before MiB  linear MiB  linear/fp32  model MiB  model/fp32");
        foreach (var (load, r) in results)
        {
            Console.WriteLine($"{load,-7} {r.Seconds,7:F1}  {MiB(r.Before),14}  {MiB(r.Peak),12}  {(double)r.Peak / fp32.Peak,9:F3}  {MiB(r.Peak - r.Before),15}  {MiB(r.LinearBytes),10}  {(double)r.LinearBytes / r.LinearFp32Bytes,11:F4}  {MiB(r.ModelBytes),9}  {(double)r.ModelBytes / fp32.ModelBytes,10:F3}");
        }
        var nf4 = results["nf4-dq"];
        double linearRatio = (double)nf4.LinearBytes / nf4.LinearFp32Bytes, peakRatio = (double)nf4.Peak / fp32.Peak;
        bool ok = linearRatio <= LinearTarget && peakRatio <= PeakTarget;
        Console.WriteLine();
        Console.WriteLine($"NF4+DQ linear layers / fp32: {linearRatio:F4} (target <= {LinearTarget}) {(linearRatio <= LinearTarget ? "ok" : "MISSED")}");
        Console.WriteLine($"NF4+DQ peak RSS / fp32 peak RSS: {peakRatio:F3} (target <= {PeakTarget}) {(peakRatio <= PeakTarget ? "ok" : "MISSED")}");
        return ok ? 0 : 1;
    }

    public static int RunChild(string[] args)
    {
        var dir = args[0];
        var load = args[1];
        QuantizationSettings? settings = load switch
        {
            "fp32" => null,
            "int8" => QuantizationSettings.Int8(),
            "nf4-dq" => QuantizationSettings.Nf4(doubleQuant: true),
            _ => throw new ArgumentException($"unknown load '{load}'"),
        };
        WarmUp();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        BenchSupport.ResetPeakRss();
        var before = BenchSupport.StatusBytes("VmRSS");
        var clock = Stopwatch.StartNew();
        using var model = ModelLoader.Load(dir, new ModelLoadOptions { Quantization = settings });
        var seconds = clock.Elapsed.TotalSeconds;
        var peak = BenchSupport.StatusBytes("VmHWM");
        var after = BenchSupport.StatusBytes("VmRSS");

        long linearFp32 = 0, linear = 0;
        foreach (var (name, module) in model.named_modules())
        {
            if (module is not LinearLayer layer || name == "lm_head") continue;
            linearFp32 += layer.OutFeatures * layer.InFeatures * 4;
            linear += layer.FrozenWeight is QuantizedLinearWeight q ? q.ResidentBytes : layer.Weight.numel() * layer.Weight.element_size();
        }
        var modelBytes = QuantizedLoading.ResidentBytes(model);
        Console.WriteLine($"loaded in {seconds:F1} s; RSS after load {after / 1048576.0:F1} MiB");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RESULT {before} {peak} {after} {linear} {linearFp32} {modelBytes} {seconds}"));
        return 0;
    }

    /// <summary>Loads libtorch and JIT-compiles the quantization kernels on a tiny tensor, so the baseline RSS includes them.</summary>
    private static void WarmUp()
    {
        using var small = randn(8, 128);
        using var q4 = FourBitLinearWeight.Quantize(small, FourBitType.Nf4, 64, doubleQuant: true, ScalarType.Float32);
        using var q8 = Int8LinearWeight.Quantize(small, ScalarType.Float32);
        using var d4 = q4.Dequantize(ScalarType.Float32);
        using var d8 = q8.Dequantize(ScalarType.Float32);
        _ = (d4.sum() + d8.sum()).item<float>();
    }

}
