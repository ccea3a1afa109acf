using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Modeling;
using SharpTune.Peft;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>The model shapes `bench train --shape` knows, or a config.json / model folder given by path.</summary>
public static class BenchShapes
{
    public const string Default = "small";

    public static readonly IReadOnlyDictionary<string, string> Known = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["small"] = "llama small preset (vocab 32000, hidden 512, 8 layers, tied embeddings, ≈ 40M)",
        ["llama-56m-untied"] = "issue #21's shape: vocab 32000, hidden 512, intermediate 1408, 8 layers, 8 heads / 4 KV heads, untied, 56.4M",
        ["quickstart"] = "examples/models/tiny-chat (the quickstart model, ≈ 820k)",
    };

    public static JsonObject Resolve(string shape)
    {
        switch (shape)
        {
            case "small":
                return (JsonObject)new Llama().Presets["small"].DeepClone();
            case "llama-56m-untied":
                var json = (JsonObject)new Llama().Presets["small"].DeepClone();
                json["tie_word_embeddings"] = false;
                return json;
            case "quickstart":
                return Read(Path.Combine(BenchSupport.RepoRoot(), "examples", "models", "tiny-chat", "config.json"));
        }
        var path = Directory.Exists(shape) ? Path.Combine(shape, "config.json") : shape;
        if (!File.Exists(path))
            throw new ArgumentException($"--shape: '{shape}' is neither a known shape ({string.Join(", ", Known.Keys)}) nor a config.json or model folder");
        return Read(path);
    }

    private static JsonObject Read(string path) =>
        JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ArgumentException($"{path}: not a JSON object");
}

/// <summary>
/// What one training step costs and where it goes, measured in this process: the fp32 GEMM rate at exactly the matrix
/// sizes of the model's linear layers (forward and both backward products), and a step split into forward, backward,
/// optimizer and the rest (gradient norm, zeroing, batch set-up), over the same pieces the trainer uses.
/// </summary>
public static class TrainProfile
{
    /// <summary>GFLOP/s of x·Wᵀ, dY·W and dYᵀ·x over every linear layer of one forward at <paramref name="tokens"/> rows.</summary>
    public static double GemmGflopsAtModelSizes(CausalLM model, long tokens, int repeats = 3)
    {
        var shapes = model.named_modules().Select(m => m.module).OfType<LinearLayer>()
            .Select(l => (l.InFeatures, l.OutFeatures)).ToList();
        if (model.Config.TieWordEmbeddings) shapes.Add((model.OutputWeight.shape[1], model.OutputWeight.shape[0]));   // the tied head is no LinearLayer
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var distinct = shapes.GroupBy(s => s).Select(g => (Shape: g.Key, Count: g.Count())).ToList();
        var operands = distinct.ToDictionary(d => d.Shape, d => (X: randn(tokens, d.Shape.InFeatures), W: randn(d.Shape.OutFeatures, d.Shape.InFeatures), Dy: randn(tokens, d.Shape.OutFeatures)));
        void RunAll()
        {
            foreach (var (shape, count) in distinct)
            {
                var (x, w, dy) = operands[shape];
                for (int i = 0; i < count; i++)
                {
                    using var y = x.matmul(w.t());
                    using var dx = dy.matmul(w);
                    using var dw = dy.t().matmul(x);
                }
            }
        }
        RunAll();   // warm-up: thread pool and allocator
        double flops = 0;
        foreach (var (shape, count) in distinct) flops += 3.0 * 2 * tokens * shape.InFeatures * shape.OutFeatures * count;
        var clock = Stopwatch.StartNew();
        for (int r = 0; r < repeats; r++) RunAll();
        return flops * repeats / clock.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>GFLOP/s of one square fp32 matmul, the figure machines are usually quoted by.</summary>
    public static double SquareGemmGflops(int n = 2048, int repeats = 5)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var a = randn(n, n);
        var b = randn(n, n);
        a.matmul(b).Dispose();
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) a.matmul(b).Dispose();
        return 2.0 * n * n * n * repeats / clock.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>Model FLOPs of one trained token: 6·N for a full fine-tune, 4·N for LoRA (no weight gradients of the base), N without the embedding.</summary>
    public static double FlopsPerToken(CausalLM model, bool lora)
    {
        long embedding = model.Model.EmbedTokens.Weight.numel();
        long all = model.named_parameters().Where(p => !Lora.IsAdapterParameter(p.name)).Sum(p => p.parameter.numel());
        long n = all - embedding + (model.Config.TieWordEmbeddings ? embedding : 0);
        return (lora ? 4.0 : 6.0) * n;
    }

    public sealed record Phases(double Forward, double Backward, double Optimizer, double Other)
    {
        public double Total => Forward + Backward + Optimizer + Other;
    }

    /// <summary>One measured step's phases and the GEMM rate probed just before it.</summary>
    public sealed record ProfiledStep(Phases Phases, double GemmGflops);

    /// <summary>
    /// <paramref name="steps"/> steps after one warm-up step, each preceded by a probe of the GEMM rate at the model's
    /// sizes. This VM's speed drifts by ±15% within a minute (neighbours on the host), and so does the GEMM rate; a
    /// step and the probe beside it see the same machine, so their medians give an MFU that does not depend on the
    /// minute one GEMM measurement happened to fall in.
    /// </summary>
    public static List<ProfiledStep> ProfileSteps(CausalLM model, IReadOnlyList<TrainableParameter> trainable, Training.Optimizer optimizer, ITrainingObjective objective,
        Func<int, LabeledBatch> batchAt, long rowTokens, int steps)
    {
        var measured = new List<ProfiledStep>();
        model.train();
        for (int s = 0; s <= steps; s++)
        {
            double gemm = GemmGflopsAtModelSizes(model, rowTokens, repeats: 1);
            var clock = Stopwatch.StartNew();
            double f, b, o;
            using (var scope = NewDisposeScope())
            {
                using var batch = batchAt(s);
                long units = objective.Units(batch);
                var start = clock.Elapsed.TotalSeconds;
                var output = objective.Compute(model, batch);
                var loss = output.LossSum / Math.Max(units, 1);
                loss.item<float>();
                f = clock.Elapsed.TotalSeconds - start;
                start = clock.Elapsed.TotalSeconds;
                loss.backward();
                b = clock.Elapsed.TotalSeconds - start;
                var norm = stack(trainable.Where(p => p.Parameter.grad is not null).Select(p => p.Parameter.grad!.norm()).ToArray()).norm();
                var multiplier = (1.0 / (norm + 1e-6)).clamp(max: 1.0);
                start = clock.Elapsed.TotalSeconds;
                optimizer.Step(1e-4, multiplier);
                o = clock.Elapsed.TotalSeconds - start;
                optimizer.ZeroGrad();
            }
            double total = clock.Elapsed.TotalSeconds;
            if (s > 0) measured.Add(new ProfiledStep(new Phases(f, b, o, total - f - b - o), gemm));
        }
        return measured;
    }

    /// <summary>Mean of each phase.</summary>
    public static Phases MeanPhases(IReadOnlyList<ProfiledStep> steps) => new(
        steps.Average(s => s.Phases.Forward), steps.Average(s => s.Phases.Backward), steps.Average(s => s.Phases.Optimizer), steps.Average(s => s.Phases.Other));

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    public static string Describe(Phases p) => string.Create(CultureInfo.InvariantCulture,
        $"forward {p.Forward:F3} s ({p.Forward / p.Total:P0}), backward {p.Backward:F3} s ({p.Backward / p.Total:P0}), optimizer {p.Optimizer:F3} s ({p.Optimizer / p.Total:P0}), other {p.Other:F3} s ({p.Other / p.Total:P0})");
}
