using System.Globalization;
using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Training speed of the llama "small" preset (≈ 40M parameters) in float32 on the CPU through <see cref="TrainingRun"/>:
/// trained tokens/s, step time and peak RSS (VmHWM) of full fine-tuning, LoRA (all linear layers, r 16) and LoRA with
/// gradient checkpointing at sequence 512, each in its own child process so each peak RSS is its own; then the
/// sample-packing speed-up on examples of mixed lengths (16..seq), <see cref="BatchPlan"/> with and without packing.
/// The first step of each run is a warm-up and left out of the figures.
/// </summary>
public static class TrainBench
{
    public const string Mode = "train";
    public const string ChildMode = "train-child";
    public const string Usage = "train [steps=3] [seq=512] [configs=full,lora,lora-gc,unpacked,packed]   llama small fp32: full / LoRA r16 / LoRA+checkpointing tokens/s, step s, peak RSS; packing vs no packing";
    private static readonly string[] Configurations = ["full", "lora", "lora-gc", "unpacked", "packed"];

    public static int Run(string[] args)
    {
        int steps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        int seq = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 512;
        var configurations = args.Length > 2 ? args[2].Split(',', StringSplitOptions.RemoveEmptyEntries) : Configurations;
        if (configurations.FirstOrDefault(c => !Configurations.Contains(c)) is { } unknown)
        {
            Console.Error.WriteLine($"error: unknown configuration '{unknown}'; known: {string.Join(',', Configurations)}");
            return 2;
        }
        if (steps < 2 || seq < 32)
        {
            Console.Error.WriteLine("error: steps must be ≥ 2 (the first is a warm-up) and seq ≥ 32");
            return 2;
        }
        var modelDir = Path.Combine(Path.GetTempPath(), "sharptune-bench-train-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var model = new CausalLM(ModelFamilies.ParseConfig(new Llama().Presets["small"], "llama small preset"), ScalarType.Float32))
            {
                ModelIO.InitializeRandom(model, 1);
                ModelIO.Save(model, modelDir);
                Console.WriteLine($"model: llama small preset, {model.parameters().Sum(p => p.numel()) / 1e6:F1}M parameters, float32, CPU, {get_num_threads()} torch threads");
            }
            Console.WriteLine(BenchSupport.LoadLine());
            Console.WriteLine($"{steps} steps per configuration (first is warm-up), seq {seq}, AdamW");
            var rates = new Dictionary<string, double>();
            foreach (var configuration in configurations)
            {
                var (code, lines) = BenchSupport.RunSelf(ChildMode, modelDir, configuration, steps.ToString(CultureInfo.InvariantCulture), seq.ToString(CultureInfo.InvariantCulture));
                var result = lines.LastOrDefault(l => l.StartsWith("result ", StringComparison.Ordinal));
                if (code != 0 || result is null)
                {
                    Console.WriteLine($"  {configuration,-9} child failed (exit {code})");
                    continue;
                }
                var f = result.Split(' ');
                double tokensPerSecond = double.Parse(f[1], CultureInfo.InvariantCulture), stepSeconds = double.Parse(f[2], CultureInfo.InvariantCulture), peak = double.Parse(f[3], CultureInfo.InvariantCulture);
                rates[configuration] = tokensPerSecond;
                Console.WriteLine($"  {configuration,-9} {tokensPerSecond,8:F0} trained tokens/s  {stepSeconds,6:F2} s/step  peak RSS {peak,6:F0} MiB  ({string.Join(' ', f[4..])})");
            }
            if (rates.TryGetValue("packed", out var packed) && rates.TryGetValue("unpacked", out var unpacked))
                Console.WriteLine($"  packing speed-up (trained tokens/s packed / unpacked): {packed / unpacked:F2}x");
            Console.WriteLine(BenchSupport.LoadLine());
            return rates.Count == configurations.Length ? 0 : 1;
        }
        finally
        {
            if (Directory.Exists(modelDir)) Directory.Delete(modelDir, recursive: true);
        }
    }

    public static int RunChild(string[] args)
    {
        string modelDir = args[0], configuration = args[1];
        int steps = int.Parse(args[2], CultureInfo.InvariantCulture), seq = int.Parse(args[3], CultureInfo.InvariantCulture);
        bool mixed = configuration is "packed" or "unpacked";
        int microBatch = mixed ? 2 : 1;
        var random = new Random(5);
        // Mixed lengths: uniform in 16..seq, as instruction data is; fixed: every example fills the sequence.
        var examples = Enumerable.Range(0, 64).Select(_ =>
        {
            int length = mixed ? random.Next(16, seq + 1) : seq;
            var ids = Enumerable.Range(0, length).Select(_ => random.Next(3, 32000)).ToArray();
            return new TokenizedExample(ids, ids);
        }).ToList();
        var plan = new BatchPlan(examples, microBatch, seq, packing: configuration == "packed", padToSequenceLen: false, padTokenId: 0, seed: 3);
        bool lora = configuration.StartsWith("lora", StringComparison.Ordinal);
        var outputDir = Path.Combine(Path.GetTempPath(), "sharptune-bench-train-out-" + Guid.NewGuid().ToString("N"));
        var config = new TrainConfig
        {
            OutputDir = outputDir,
            MaxSteps = steps,
            MicroBatchSize = microBatch,
            SequenceLen = seq,
            SamplePacking = configuration == "packed",
            LearningRate = 1e-4,
            LrScheduler = LrSchedulerType.Constant,
            Optimizer = OptimizerType.AdamwTorch,
            MaxGradNorm = 1.0,
            Seed = 7,
            Adapter = lora ? AdapterType.Lora : null,
            LoraR = 16,
            LoraAlpha = 32,
            LoraDropout = 0,
            LoraTargetLinear = lora,
            GradientCheckpointing = configuration == "lora-gc" ? GradientCheckpointingMode.True : GradientCheckpointingMode.False,
            LoggingSteps = 1,
            SaveSteps = steps + 1,
        };
        try
        {
            var outcome = new TrainingRun(config, modelDir, TextWriter.Null).Run(new BatchPlanSource(plan), null, new CausalLmObjective());
            var measured = outcome.Logs.Skip(1).ToList();
            long tokens = measured.Last().TokensSeen - outcome.Logs[0].TokensSeen;
            double seconds = TimeOf(outcome.Logs);
            double peak = BenchSupport.ResidentMiB("VmHWM");
            string detail = mixed
                ? $"micro batch {microBatch}, {plan.RowsPerEpoch} rows for {examples.Count} examples, packing efficiency {plan.PackingEfficiency:P0}"
                : lora ? "r 16, all linear" : "all parameters";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"result {tokens / seconds:F1} {seconds / measured.Count:F3} {peak:F0} {detail}"));
            return 0;
        }
        finally
        {
            if (Directory.Exists(outputDir)) Directory.Delete(outputDir, recursive: true);
        }
    }

    /// <summary>Seconds of the measured steps (all but the first), from each step's tokens and its tokens/s.</summary>
    internal static double TimeOf(IReadOnlyList<StepLog> logs)
    {
        double seconds = 0;
        for (int i = 1; i < logs.Count; i++) seconds += (logs[i].TokensSeen - logs[i - 1].TokensSeen) / logs[i].TokensPerSecond;
        return seconds;
    }
}
