using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Planning;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Issue #24's planner check: real `sharptune train` runs (the CLI, its own process) on a 50M–1B llama shape with random
/// weights — full fine-tune, LoRA and QLoRA, with and without gradient checkpointing, at two sequence lengths — and for
/// each the planner's predicted peak (MemoryPlanner, device cpu) against the measured peak RSS (the child's VmHWM,
/// read from /proc while it runs). Prints predicted, measured and their ratio; the target is within 15%.
/// </summary>
public static class MemoryBench
{
    public const string Mode = "memory";
    public const string Usage = "memory [hidden=768] [layers=12] [runs=all|full-256,...]   predicted vs measured peak RSS of real train runs (planner, issue #24)";

    private sealed record PlannedRun(string Name, string Adapter, bool Checkpointing, int Seq, int MicroBatch);

    private static readonly PlannedRun[] Runs =
    [
        new PlannedRun("full-256", "full", false, 256, 1),
        new PlannedRun("full-gc-512", "full", true, 512, 1),
        new PlannedRun("lora-512", "lora", false, 512, 2),
        new PlannedRun("lora-gc-1024", "lora", true, 1024, 1),
        new PlannedRun("qlora-1024", "qlora", false, 1024, 1),
        new PlannedRun("qlora-gc-512", "qlora", true, 512, 1),
        new PlannedRun("dora-256", "dora", false, 256, 2),
    ];

    public static int Run(string[] args)
    {
        int hidden = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 512;
        int layers = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 8;
        var selected = args.Length > 2 && args[2] != "all" ? Runs.Where(r => args[2].Split(',').Contains(r.Name)).ToArray() : Runs;
        var root = Path.Combine(Path.GetTempPath(), "sharptune-bench-memory-" + Guid.NewGuid().ToString("N"));
        try
        {
            var modelDir = Path.Combine(root, "model");
            var json = new Llama().Presets["small"].DeepClone().AsObject();
            json["hidden_size"] = hidden; json["num_hidden_layers"] = layers; json["intermediate_size"] = hidden * 8 / 3 / 64 * 64;
            json["num_attention_heads"] = hidden / 64; json["num_key_value_heads"] = Math.Max(1, hidden / 256);
            json["vocab_size"] = 32000; json["max_position_embeddings"] = 4096; json["tie_word_embeddings"] = false;
            using (var model = new CausalLM(ModelFamilies.ParseConfig(json, "memory bench shape"), ScalarType.Float32))
            {
                RandomWeights.Initialize(model, 1);
                ModelIO.Save(model, modelDir);
                Console.WriteLine($"model: llama hidden {hidden}, {layers} layers, intermediate {json["intermediate_size"]}, vocab 32000, {model.parameters().Sum(p => p.numel()) / 1e6:F1}M parameters, fp32, random");
            }
            CompanionFiles.CopyMissing(Path.Combine(BenchSupport.RepoRoot(), "examples", "models", "tiny-chat"), modelDir);
            var data = Path.Combine(root, "corpus.jsonl");
            BenchSupport.WriteRandomWordCorpus(data, 60_000);
            Console.WriteLine(BenchSupport.LoadLine());
            Console.WriteLine($"{"run",-14} {"predicted",10} {"measured",10} {"ratio",6}  phase");
            bool allWithin = true;
            foreach (var run in selected)
            {
                var configPath = WriteConfig(root, run, modelDir, data);
                var config = ConfigLoader.Load(configPath, [], _ => { });
                var forecast = new MemoryPlanner(config, ModelFamilies.LoadConfig(modelDir), PlanDevice.Parse("cpu", Modeling.PrecisionPolicy.PrefersBf16(CPU))).Forecast();
                var (code, peak) = PeakRssOfTrain(configPath);
                if (code != 0) { Console.WriteLine($"{run.Name,-14} train failed (exit {code})"); allWithin = false; continue; }
                double ratio = (double)forecast.PeakBytes / peak;
                allWithin &= Math.Abs(ratio - 1) <= 0.15;
                var parts = string.Join(", ", forecast.Components.Where(c => c.Bytes >= 1 << 20).Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Name} {c.Bytes / 1048576.0:F0}")));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{run.Name,-14} {forecast.PeakBytes / 1048576.0,7:F0} MiB {peak / 1048576.0,6:F0} MiB {ratio,6:F3}  {forecast.PeakPhase}: {parts}"));
            }
            Console.WriteLine(BenchSupport.LoadLine());
            return allWithin ? 0 : 1;
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    private static string WriteConfig(string root, PlannedRun run, string modelDir, string data)
    {
        var lines = new List<string>
        {
            $"base_model: {modelDir}",
            "datasets:", $"  - path: {data}", "    type: pretrain",
            "val_set_size: 0", $"sequence_len: {run.Seq}", $"micro_batch_size: {run.MicroBatch}", "max_steps: 2",
            "learning_rate: 1e-4", "optimizer: adamw_torch", "bf16: false", "device: cpu", "logging_steps: 1", "save_steps: 100",
            $"gradient_checkpointing: {(run.Checkpointing ? "true" : "false")}", $"output_dir: {Path.Combine(root, "out-" + run.Name)}",
        };
        if (run.Adapter != "full") lines.AddRange([run.Adapter == "qlora" ? "adapter: qlora" : "adapter: lora", "lora_r: 16", "lora_alpha: 32", "lora_target_linear: true"]);
        if (run.Adapter == "qlora") lines.AddRange(["load_in_4bit: true", "bnb_4bit_use_double_quant: true"]);
        if (run.Adapter == "dora") lines.Add("peft_use_dora: true");
        var path = Path.Combine(root, run.Name + ".yaml");
        File.WriteAllLines(path, lines);
        return path;
    }

    /// <summary>Runs `sharptune train CONFIG` and returns its exit code and peak RSS (VmHWM, polled from /proc/PID/status until it exits).</summary>
    internal static (int Code, long PeakBytes) PeakRssOfTrain(string configPath)
    {
        var start = new ProcessStartInfo(Path.Combine(BenchSupport.RepoRoot(), "sharptune"), ["train", configPath])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        long peak = 0;
        while (!process.HasExited)
        {
            if (BenchSupport.ProcessStatusBytes(process.Id, "VmHWM") is { } hwm) peak = Math.Max(peak, hwm);
            Thread.Sleep(20);
        }
        process.WaitForExit();
        if (process.ExitCode != 0) Console.Error.WriteLine(errors.Result + output.Result);
        return (process.ExitCode, peak);
    }
}
