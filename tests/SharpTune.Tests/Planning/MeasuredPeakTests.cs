using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Planning;
using static TorchSharp.torch;

namespace SharpTune.Tests.Planning;

/// <summary>
/// The planner against real `sharptune train` processes: each run's peak RSS (VmHWM of the child, read from /proc while
/// it runs; memory, not time, so the machine's load does not matter) is within 15% of the predicted peak.
/// bench/ `memory` does the same on a 54M-parameter shape with more configurations.
/// </summary>
public sealed class MeasuredPeakTests
{
    [SkippableTheory]
    [InlineData("full", false, 256, 2)]
    [InlineData("lora", true, 512, 2)]
    // QLoRA's former "load residue" was glibc keeping freed heap blocks resident (dynamic mmap threshold); with
    // Native.HeapPolicy's fixed threshold the 54.5M bench shape measures within 2% (docs/memory.md).
    [InlineData("qlora", false, 512, 1)]
    public void PredictedPeakIsWithinFifteenPercentOfMeasuredRss(string adapter, bool checkpointing, int seq, int microBatch)
    {
        Skip.IfNot(File.Exists("/proc/self/status"), "peak RSS is read from /proc (Linux)");
        // Opt-in: the same child's peak RSS varied by up to 10% between runs (glibc keeps a varying share of the
        // freed heap), which puts these cases at the 15% edge; `bench memory` prints the full table.
        Skip.IfNot(Environment.GetEnvironmentVariable("SHARPTUNE_MEMORY_CHECKS") == "1", "set SHARPTUNE_MEMORY_CHECKS=1 to measure child peak RSS against the planner (takes ~1 min, varies by up to 10% between runs)");
        var root = TestPaths.TempDir();
        var modelDir = Path.Combine(root, "model");
        var json = new Llama().Presets["small"].DeepClone().AsObject();
        json["hidden_size"] = 256; json["num_hidden_layers"] = 4; json["intermediate_size"] = 704;
        json["num_attention_heads"] = 4; json["num_key_value_heads"] = 2; json["vocab_size"] = 8192; json["tie_word_embeddings"] = false;
        using (var model = new CausalLM(ModelFamilies.ParseConfig(json, "planner test shape"), ScalarType.Float32))
        {
            RandomWeights.Initialize(model, 1);
            ModelIO.Save(model, modelDir);
        }
        CompanionFiles.CopyMissing(Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat"), modelDir);
        var random = new Random(3);
        var data = Path.Combine(root, "corpus.jsonl");
        File.WriteAllLines(data, Enumerable.Range(0, 20).Select(_ => new JsonObject
        {
            ["text"] = string.Join(' ', Enumerable.Range(0, 200).Select(_ => new string(Enumerable.Range(0, random.Next(2, 8)).Select(_ => (char)('a' + random.Next(26))).ToArray()))),
        }.ToJsonString()));
        var lines = new List<string>
        {
            $"base_model: {modelDir}", "datasets:", $"  - path: {data}", "    type: pretrain", "val_set_size: 0",
            $"sequence_len: {seq}", $"micro_batch_size: {microBatch}", "max_steps: 2", "learning_rate: 1e-4", "optimizer: adamw_torch",
            "bf16: false", "device: cpu", "logging_steps: 1", "save_steps: 100", $"gradient_checkpointing: {(checkpointing ? "true" : "false")}",
            $"output_dir: {Path.Combine(root, "out")}",
        };
        if (adapter != "full") lines.AddRange([adapter == "qlora" ? "adapter: qlora" : "adapter: lora", "lora_r: 16", "lora_alpha: 32", "lora_target_linear: true"]);
        if (adapter == "qlora") lines.Add("load_in_4bit: true");
        var configPath = Path.Combine(root, "run.yaml");
        File.WriteAllLines(configPath, lines);

        var forecast = new MemoryPlanner(ConfigLoader.Load(configPath, [], _ => { }), ModelFamilies.LoadConfig(modelDir), PlanDevice.Parse("cpu", cpuPrefersBf16: false)).Forecast();
        var (code, peak, output) = PeakRssOfTrain(configPath);
        Assert.True(code == 0, output);
        double ratio = (double)forecast.PeakBytes / peak;
        Assert.True(Math.Abs(ratio - 1) <= 0.15, $"{adapter} gc={checkpointing} {microBatch}×{seq}: predicted {PlanDevice.Format(forecast.PeakBytes)}, measured {PlanDevice.Format(peak)} (ratio {ratio:F3})");
    }

    /// <summary>The CLI beside the test binaries as a child; VmHWM polled every 10 ms until it exits (it only grows).</summary>
    private static (int Code, long PeakBytes, string Output) PeakRssOfTrain(string configPath)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "SharpTune.Cli"), ["train", configPath])
        {
            RedirectStandardOutput = true, RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        long peak = 0;
        while (!process.HasExited)
        {
            try
            {
                foreach (var line in File.ReadLines($"/proc/{process.Id}/status"))
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                        peak = Math.Max(peak, long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024);
            }
            catch (IOException) { }
            Thread.Sleep(10);
        }
        process.WaitForExit();
        return (process.ExitCode, peak, stderr.Result + stdout.Result);
    }
}
