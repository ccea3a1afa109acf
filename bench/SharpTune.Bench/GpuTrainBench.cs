using System.Globalization;
using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;
using SharpTune.Native;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Issue #11's GPU training benchmark: a llama preset (default the Llama-3.1-8B shape) with random bf16 weights,
/// gradient checkpointing, sequence 8192: LoRA r16 on all linear layers with micro-batch 2 (bf16 compute, fp32
/// adapters) and full fine-tune with micro-batch 1 (bf16: full, as the transformers baseline runs). Each
/// configuration in its own child process; prints step time, tokens/s, peak GPU memory (NVML) and MFU against the
/// given peak (H100 SXM bf16 dense: 989 TFLOP/s). bench/gpu/hf_baseline.py measures transformers + PEFT the same way.
/// `gpu-train tiny 128 3 lora,full cpu` dry-runs the code path on a CPU.
/// </summary>
public static class GpuTrainBench
{
    public const string Mode = "gpu-train";
    public const string ChildMode = "gpu-train-child";
    public const string Usage = "gpu-train [preset=llama-3.1-8b] [seq=8192] [steps=4] [configs=lora,full] [device=cuda] [peak-tflops=989]   bf16 + checkpointing: s/step, tokens/s, peak GPU GiB, MFU";

    public static int Run(string[] args)
    {
        string preset = Arg(args, 0, "llama-3.1-8b"), device = Arg(args, 4, "cuda");
        int seq = int.Parse(Arg(args, 1, "8192"), CultureInfo.InvariantCulture);
        int steps = int.Parse(Arg(args, 2, "4"), CultureInfo.InvariantCulture);
        var configurations = Arg(args, 3, "lora,full").Split(',', StringSplitOptions.RemoveEmptyEntries);
        double peakTflops = double.Parse(Arg(args, 5, "989"), CultureInfo.InvariantCulture);
        if (steps < 2 || configurations.Any(c => c is not ("lora" or "full")))
        {
            Console.Error.WriteLine("error: steps must be ≥ 2 (the first is a warm-up); configs are lora and/or full");
            return 2;
        }
        var modelDir = Path.Combine(Path.GetTempPath(), "sharptune-bench-gpu-" + Guid.NewGuid().ToString("N"));
        try
        {
            long parameters;
            var config = ModelFamilies.ParseConfig(new Llama().Presets[preset], $"llama {preset} preset");
            using (var model = new CausalLM(config, ScalarType.BFloat16))
            {
                RandomWeights.Initialize(model, 1);
                ModelIO.Save(model, modelDir);
                parameters = model.parameters().Sum(p => p.numel());
            }
            Console.WriteLine($"model: llama {preset}, {parameters / 1e9:F2}B parameters, bf16 random weights; seq {seq}, gradient checkpointing, {steps} steps (first is warm-up), device {device}");
            foreach (var configuration in configurations)
            {
                var (code, lines) = BenchSupport.RunSelf(ChildMode, modelDir, configuration, steps.ToString(CultureInfo.InvariantCulture), seq.ToString(CultureInfo.InvariantCulture), device);
                var result = lines.LastOrDefault(l => l.StartsWith("result ", StringComparison.Ordinal));
                if (code != 0 || result is null)
                {
                    Console.WriteLine($"  {configuration,-5} child failed (exit {code}): {lines.LastOrDefault()}");
                    continue;
                }
                var f = result.Split(' ');
                double tokensPerSecond = double.Parse(f[1], CultureInfo.InvariantCulture), stepSeconds = double.Parse(f[2], CultureInfo.InvariantCulture);
                string memory = f[3] == "-" ? "n/a" : $"{double.Parse(f[3], CultureInfo.InvariantCulture):F1} GiB";
                // Model FLOPs per token: 6N for the weights + 6·L·d·T for causal attention (half of 12·L·d·T); recompute not counted.
                double flopsPerToken = 6.0 * parameters + 6.0 * config.NumHiddenLayers * config.HiddenSize * seq;
                double mfu = tokensPerSecond * flopsPerToken / (peakTflops * 1e12);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"  {configuration,-5} {stepSeconds,7:F2} s/step  {tokensPerSecond,9:F0} tokens/s  peak GPU {memory}  MFU {mfu:P1} of {peakTflops} TFLOP/s  ({string.Join(' ', f[4..])})"));
            }
            return 0;
        }
        finally
        {
            if (Directory.Exists(modelDir)) Directory.Delete(modelDir, recursive: true);
        }
    }

    public static int RunChild(string[] args)
    {
        string modelDir = args[0], configuration = args[1], device = args[4];
        int steps = int.Parse(args[2], CultureInfo.InvariantCulture), seq = int.Parse(args[3], CultureInfo.InvariantCulture);
        bool lora = configuration == "lora";
        int microBatch = lora ? 2 : 1;
        var random = new Random(5);
        int vocab = ModelFamilies.LoadConfig(modelDir).VocabSize;
        var examples = Enumerable.Range(0, microBatch * steps).Select(_ =>
        {
            var ids = Enumerable.Range(0, seq).Select(_ => random.Next(3, vocab)).ToArray();
            return new TokenizedExample(ids, ids);
        }).ToList();
        var plan = new BatchPlan(examples, microBatch, seq, packing: false, padToSequenceLen: false, padTokenId: 0, seed: 3);
        var outputDir = Path.Combine(Path.GetTempPath(), "sharptune-bench-gpu-out-" + Guid.NewGuid().ToString("N"));
        var config = new TrainConfig
        {
            OutputDir = outputDir,
            MaxSteps = steps,
            MicroBatchSize = microBatch,
            SequenceLen = seq,
            LearningRate = 1e-5,
            LrScheduler = LrSchedulerType.Constant,
            Optimizer = OptimizerType.AdamwTorch,
            Device = device,
            Bf16 = lora ? Bf16Mode.True : Bf16Mode.Full,
            GradientCheckpointing = GradientCheckpointingMode.True,
            Adapter = lora ? AdapterType.Lora : null,
            LoraR = 16,
            LoraAlpha = 32,
            LoraDropout = 0,
            LoraTargetLinear = lora,
            LoggingSteps = 1,
            SaveSteps = steps + 1,
        };
        try
        {
            TrainOutcome outcome;
            try
            {
                outcome = new TrainingRecipe(config, modelDir, TextWriter.Null).Train(new SupervisedSetup(new CausalLmObjective(), new BatchPlanSource(plan), null));
            }
            catch (InvalidInputException e)
            {
                Console.WriteLine($"error: {e.Message}");
                return 2;
            }
            var measured = outcome.Logs.Skip(1).ToList();
            double seconds = TrainBench.TimeOf(outcome.Logs);
            long tokens = measured.Last().TokensSeen - outcome.Logs[0].TokensSeen;
            string peak = outcome.Logs.Last().Metrics.TryGetValue("gpu_mem_peak_gib", out var gib) ? gib.ToString("F2", CultureInfo.InvariantCulture) : "-";
            string detail = lora ? $"LoRA r16 all linear, micro-batch {microBatch}, bf16 + fp32 adapters" : $"full fine-tune, micro-batch {microBatch}, bf16: full";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"result {tokens / seconds:F1} {seconds / measured.Count:F3} {peak} {detail} on {ComputeDevice.Describe(ComputeDevice.Resolve(device))}"));
            return 0;
        }
        finally
        {
            if (Directory.Exists(outputDir)) Directory.Delete(outputDir, recursive: true);
        }
    }

    private static string Arg(string[] args, int index, string fallback) => args.Length > index && args[index] is { Length: > 0 } value ? value : fallback;
}
