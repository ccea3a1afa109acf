using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Issue #20: the cost of routing. A LoRA step (r 16, all linear layers, so every expert's w1/w2/w3 too) on a
/// Mixtral-shaped model with 8 experts, top-2, against a dense Llama with the same active parameters per token (its
/// intermediate size is top_k × the experts'), through the same <see cref="TrainBench"/> child and TrainingRecipe. With the
/// experts batched (one GEMM per expert per projection) the MoE should cost at most 1.5× the dense model per token.
/// </summary>
public static class MoeBench
{
    public const string Mode = "moe";
    public const string Usage = "moe [steps=3] [seq=256] [layers=8]   LoRA step tokens/s: Mixtral-shaped 8 experts top-2 vs dense llama of equal active parameters (target MoE ≤ 1.5× dense)";

    public static int Run(string[] args)
    {
        int steps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        int seq = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 256;
        int layers = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 8;
        if (steps < 2 || seq < 32 || layers < 1)
        {
            Console.Error.WriteLine("error: steps must be ≥ 2 (the first is a warm-up), seq ≥ 32, layers ≥ 1");
            return 2;
        }
        const int hidden = 512, expertWidth = 1024, experts = 8, topK = 2;
        JsonObject Shape(string type, int intermediate) => new()
        {
            ["model_type"] = type, ["vocab_size"] = 32000, ["hidden_size"] = hidden, ["intermediate_size"] = intermediate,
            ["num_hidden_layers"] = layers, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = 4096,
            ["num_local_experts"] = experts, ["num_experts_per_tok"] = topK, ["sliding_window"] = null, ["tie_word_embeddings"] = false,
        };
        var shapes = new (string Name, JsonObject Json)[] { ("dense", Shape("llama", topK * expertWidth)), ("moe", Shape("mixtral", expertWidth)) };
        var dirs = new List<string>();
        try
        {
            Console.WriteLine(BenchSupport.LoadLine());
            Console.WriteLine($"{steps} steps per model (first is warm-up), seq {seq}, micro batch 1, LoRA r 16 all linear, AdamW, float32, CPU, {get_num_threads()} torch threads");
            var rates = new Dictionary<string, double>();
            foreach (var (name, json) in shapes)
            {
                var dir = Path.Combine(Path.GetTempPath(), $"sharptune-bench-moe-{name}-" + Guid.NewGuid().ToString("N"));
                dirs.Add(dir);
                var config = ModelFamilies.ParseConfig(CommonConfig.Preset(json["model_type"]!.GetValue<string>(), name == "moe" ? "MixtralForCausalLM" : "LlamaForCausalLM", json), name);
                long total, active;
                using (var model = new CausalLM(config, ScalarType.Float32))
                {
                    RandomWeights.Initialize(model, 1);
                    ModelIO.Save(model, dir);
                    total = model.parameters().Sum(p => p.numel());
                    // Per token only top_k of the experts run: count the others out.
                    long perExpert = model.named_parameters().Where(p => p.name.StartsWith("model.layers.0.block_sparse_moe.experts.0.", StringComparison.Ordinal)).Sum(p => p.parameter.numel());
                    active = total - (config.Moe is null ? 0 : (long)layers * (experts - topK) * perExpert);
                }
                var (code, lines) = BenchSupport.RunSelf(TrainBench.ChildMode, dir, "lora", steps.ToString(CultureInfo.InvariantCulture), seq.ToString(CultureInfo.InvariantCulture));
                var result = lines.LastOrDefault(l => l.StartsWith("result ", StringComparison.Ordinal));
                if (code != 0 || result is null)
                {
                    Console.WriteLine($"  {name,-6} child failed (exit {code})");
                    foreach (var line in lines.TakeLast(5)) Console.WriteLine("    " + line);
                    continue;
                }
                var f = result.Split(' ');
                double tokensPerSecond = double.Parse(f[1], CultureInfo.InvariantCulture);
                rates[name] = tokensPerSecond;
                Console.WriteLine($"  {name,-6} {total / 1e6,6:F1}M parameters, {active / 1e6,6:F1}M active per token: {tokensPerSecond,7:F0} trained tokens/s  {double.Parse(f[2], CultureInfo.InvariantCulture),6:F2} s/step  peak RSS {double.Parse(f[3], CultureInfo.InvariantCulture),6:F0} MiB");
            }
            if (rates.TryGetValue("dense", out var dense) && rates.TryGetValue("moe", out var moe))
                Console.WriteLine($"  MoE step cost / dense step cost (per token): {dense / moe:F2}x (target ≤ 1.5x)");
            Console.WriteLine(BenchSupport.LoadLine());
            return rates.Count == shapes.Length ? 0 : 1;
        }
        finally
        {
            foreach (var dir in dirs.Where(Directory.Exists)) Directory.Delete(dir, recursive: true);
        }
    }
}
