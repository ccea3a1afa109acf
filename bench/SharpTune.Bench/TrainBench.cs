using System.Globalization;
using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;
using SharpTune.Peft;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Training speed on the CPU through <see cref="TrainingRecipe"/>, float32: trained tokens/s, step time and peak RSS (VmHWM)
/// of full fine-tuning, LoRA (all linear layers, r 16) and LoRA with gradient checkpointing, each in its own child
/// process so each peak RSS is its own; then the sample-packing speed-up on examples of mixed lengths (16..seq).
/// Each child also measures, in the same process, libtorch's fp32 GEMM rate at the model's own matrix sizes, the
/// model FLOP/s and their ratio (MFU against this machine's GEMM rate), the step split into forward / backward /
/// optimizer / other, and the peak RSS split into weights, gradients, optimizer state and the rest. --contention
/// runs everything again beside one busy process per core and prints contended / quiet. The first step of each
/// run is a warm-up and left out of the figures.
/// </summary>
public static class TrainBench
{
    public const string Mode = "train";
    public const string ChildMode = "train-child";
    public const string SpinMode = "train-spin";
    public const string Usage = "train [steps=3] [seq=512] [configs=full,lora,lora-gc,unpacked,packed] [--shape small|llama-56m-untied|quickstart|CONFIG] [--batch 1] [--contention]   fp32 CPU training: tokens/s, MFU vs in-process GEMM rate, step phases, peak RSS split; packing speed-up; throughput beside busy processes";
    private static readonly string[] Configurations = ["full", "lora", "lora-gc", "unpacked", "packed"];

    public static int Run(string[] args)
    {
        string shape = BenchShapes.Default;
        int? batchOption = null;
        bool contention = false;
        var positional = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--shape" when i + 1 < args.Length: shape = args[++i]; break;
                case "--batch" when i + 1 < args.Length: batchOption = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--contention": contention = true; break;
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
        int steps = positional.Count > 0 ? int.Parse(positional[0], CultureInfo.InvariantCulture) : 3;
        int seq = positional.Count > 1 ? int.Parse(positional[1], CultureInfo.InvariantCulture) : 512;
        var configurations = positional.Count > 2 ? positional[2].Split(',', StringSplitOptions.RemoveEmptyEntries) : Configurations;
        if (configurations.FirstOrDefault(c => !Configurations.Contains(c)) is { } unknown)
        {
            Console.Error.WriteLine($"error: unknown configuration '{unknown}'; known: {string.Join(',', Configurations)}");
            return 2;
        }
        if (steps < 2 || seq < 8 || batchOption is < 1)
        {
            Console.Error.WriteLine("error: steps must be ≥ 2 (the first is a warm-up), seq ≥ 8 and --batch ≥ 1");
            return 2;
        }
        var modelDir = Path.Combine(Path.GetTempPath(), "sharptune-bench-train-" + Guid.NewGuid().ToString("N"));
        try
        {
            using (var model = new CausalLM(ModelFamilies.ParseConfig(BenchShapes.Resolve(shape), $"shape {shape}"), ScalarType.Float32))
            {
                RandomWeights.Initialize(model, 1);
                ModelIO.Save(model, modelDir);
                string what = BenchShapes.Known.TryGetValue(shape, out var d) ? d : shape;
                Console.WriteLine($"model: {what}; {model.parameters().Sum(p => p.numel()) / 1e6:F1}M parameters, float32, CPU, {get_num_threads()} torch threads");
            }
            Console.WriteLine(BenchSupport.LoadLine());
            Console.WriteLine($"{steps} steps per configuration (first is warm-up), seq {seq}, AdamW, max_grad_norm 1");
            var quiet = RunConfigurations(modelDir, configurations, steps, seq, batchOption);
            bool complete = quiet.Count == configurations.Length;
            if (contention)
            {
                Console.WriteLine($"contention: {Environment.ProcessorCount} busy processes (one per core) beside each run");
                var spinners = Enumerable.Range(0, Environment.ProcessorCount).Select(_ => BenchSupport.StartSelf(SpinMode)).ToList();
                try
                {
                    var busy = RunConfigurations(modelDir, configurations, steps, seq, batchOption);
                    complete &= busy.Count == configurations.Length;
                    foreach (var (name, rate) in busy)
                        if (quiet.TryGetValue(name, out var q)) Console.WriteLine($"  {name,-9} contended / quiet tokens/s: {rate / q:F2}x (target ≥ 0.40x)");
                }
                finally
                {
                    foreach (var spinner in spinners)
                    {
                        spinner.Kill();
                        spinner.Dispose();
                    }
                }
            }
            Console.WriteLine(BenchSupport.LoadLine());
            return complete ? 0 : 1;
        }
        finally
        {
            if (Directory.Exists(modelDir)) Directory.Delete(modelDir, recursive: true);
        }
    }

    /// <summary>One child per configuration; returns trained tokens/s by configuration.</summary>
    private static Dictionary<string, double> RunConfigurations(string modelDir, IReadOnlyList<string> configurations, int steps, int seq, int? batchOption)
    {
        var rates = new Dictionary<string, double>();
        foreach (var configuration in configurations)
        {
            int batch = batchOption ?? (configuration is "packed" or "unpacked" ? 2 : 1);
            var (code, lines) = BenchSupport.RunSelf(ChildMode, modelDir, configuration, steps.ToString(CultureInfo.InvariantCulture), seq.ToString(CultureInfo.InvariantCulture), batch.ToString(CultureInfo.InvariantCulture), "profile");
            var result = lines.LastOrDefault(l => l.StartsWith("result ", StringComparison.Ordinal));
            if (code != 0 || result is null)
            {
                Console.WriteLine($"  {configuration,-9} child failed (exit {code})");
                continue;
            }
            var f = result.Split(' ', 5);
            double tokensPerSecond = double.Parse(f[1], CultureInfo.InvariantCulture), stepSeconds = double.Parse(f[2], CultureInfo.InvariantCulture), peak = double.Parse(f[3], CultureInfo.InvariantCulture);
            rates[configuration] = tokensPerSecond;
            Console.WriteLine($"  {configuration,-9} {tokensPerSecond,8:F0} trained tokens/s  {stepSeconds,6:F2} s/step  peak RSS {peak,6:F0} MiB  ({f[4]})");
            foreach (var line in lines.Where(l => l.StartsWith("detail ", StringComparison.Ordinal))) Console.WriteLine($"            {line[7..]}");
        }
        if (rates.TryGetValue("packed", out var packed) && rates.TryGetValue("unpacked", out var unpacked))
            Console.WriteLine($"  packing speed-up (trained tokens/s packed / unpacked): {packed / unpacked:F2}x");
        return rates;
    }

    /// <summary>A busy process for --contention: spins until killed.</summary>
    public static int Spin(string[] args)
    {
        long x = 0;
        while (true) x = unchecked(x * 6364136223846793005L + 1442695040888963407L);
    }

    public static int RunChild(string[] args)
    {
        string modelDir = args[0], configuration = args[1];
        int steps = int.Parse(args[2], CultureInfo.InvariantCulture), seq = int.Parse(args[3], CultureInfo.InvariantCulture);
        int microBatch = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 1;
        bool profile = args.Length > 5 && args[5] == "profile";
        bool mixed = configuration is "packed" or "unpacked";
        var modelConfig = ModelFamilies.LoadConfig(modelDir);
        int vocab = (int)modelConfig.VocabSize;
        var random = new Random(5);
        // Mixed lengths: uniform in 16..seq, as instruction data is; fixed: every example fills the sequence.
        var examples = Enumerable.Range(0, Math.Max(64, microBatch * (steps + 1))).Select(_ =>
        {
            int length = mixed ? random.Next(Math.Min(16, seq), seq + 1) : seq;
            var ids = Enumerable.Range(0, length).Select(_ => random.Next(3, vocab)).ToArray();
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
            BenchSupport.ResetPeakRss();
            double startRss = BenchSupport.ResidentMiB("VmRSS");
            var outcome = new TrainingRecipe(config, modelDir, TextWriter.Null).Train(new SupervisedSetup(new CausalLmObjective(), new BatchPlanSource(plan), null));
            double peak = BenchSupport.ResidentMiB("VmHWM");
            var measured = outcome.Logs.Skip(1).ToList();
            long tokens = measured.Last().TokensSeen - outcome.Logs[0].TokensSeen;
            double seconds = TimeOf(outcome.Logs);
            double tokensPerSecond = tokens / seconds;
            string detail = mixed
                ? $"micro batch {microBatch}, {plan.RowsPerEpoch} rows for {examples.Count} examples, packing efficiency {plan.PackingEfficiency:P0}"
                : (lora ? "r 16, all linear" : "all parameters") + $", micro batch {microBatch} × {seq}";

            if (!profile)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"result {tokensPerSecond:F1} {seconds / measured.Count:F3} {peak:F0} {detail}"));
                return 0;
            }
            // The same model again, for the in-process profile (the run above disposed its own).
            using var model = ModelLoader.Load(modelDir);
            if (lora)
                Lora.Inject(model, new LoraSettings { R = 16, Alpha = 32, Dropout = 0, TargetModules = Lora.AllLinearNames(model) }, 7);
            else
                foreach (var p in model.parameters()) p.requires_grad = true;
            if (config.GradientCheckpointing != GradientCheckpointingMode.False) GradientCheckpointing.Enable(model);
            var trainable = model.named_parameters().Where(p => p.parameter.requires_grad)
                .Select(p => new TrainableParameter(p.name, p.parameter, TrainableParameter.DecayApplies(p.name))).ToList();
            const double MiB = 1024.0 * 1024.0;
            double weights = model.parameters().Sum(p => p.numel() * p.element_size()) / MiB;
            double gradients = trainable.Sum(p => p.Parameter.numel() * p.Parameter.element_size()) / MiB;
            double optimizerState = 2 * gradients;   // AdamW: exp_avg and exp_avg_sq in float32
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"detail peak RSS split: weights {weights:F0} MiB, gradients {gradients:F0}, optimizer state {optimizerState:F0}, rest {peak - weights - gradients - optimizerState:F0} (process at start {startRss:F0})"));

            if (!mixed)
            {
                long rowTokens = (long)microBatch * seq;
                double square = TrainProfile.SquareGemmGflops();
                var optimizer = Training.Optimizer.Create(OptimizerType.AdamwTorch, trainable, 0.0, 0.9, 0.999, 1e-8);
                var batches = new BatchPlanSource(plan);
                var profiled = TrainProfile.ProfileSteps(model, trainable, optimizer, new CausalLmObjective(),
                    s => batches.Batch(0, s % batches.BatchesPerEpoch), rowTokens, Math.Max(3, steps - 1));
                double stepFlops = TrainProfile.FlopsPerToken(model, lora) * rowTokens;
                double gemm = TrainProfile.Median(profiled.Select(p => p.GemmGflops));
                double stepGflops = TrainProfile.Median(profiled.Select(p => stepFlops / p.Phases.Total / 1e9));
                var ratios = profiled.Select(p => stepFlops / p.Phases.Total / 1e9 / p.GemmGflops).ToList();
                double trainerGflops = TrainProfile.FlopsPerToken(model, lora) * tokensPerSecond / 1e9;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"detail GEMM at the model's sizes ({rowTokens} rows, median of {profiled.Count} probes between the steps below) {gemm:F1} GFLOP/s (range {profiled.Min(p => p.GemmGflops):F1}–{profiled.Max(p => p.GemmGflops):F1}; 2048² {square:F1})"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"detail MFU {stepGflops / gemm:F2} of that GEMM rate (target ≥ 0.50): median step {stepGflops:F1} GFLOP/s ({(lora ? 4 : 6)}·N·tokens/s); step/probe pairs {ratios.Min():F2}–{ratios.Max():F2}; the trainer's run above {trainerGflops:F1} GFLOP/s = {trainerGflops / gemm:F2}"));
                Console.WriteLine($"detail step phases (mean of {profiled.Count}): {TrainProfile.Describe(TrainProfile.MeanPhases(profiled))}");
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"result {tokensPerSecond:F1} {seconds / measured.Count:F3} {peak:F0} {detail}"));
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
