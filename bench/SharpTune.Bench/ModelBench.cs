using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Inference;
using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Training and generation speed of a ~50M-parameter Llama in float32: forward+backward tokens/s at sequence 512 with
/// the peak resident set (VmHWM), and greedy generation tokens/s with the KV cache against recomputing the whole prefix.
/// </summary>
public static class ModelBench
{
    public const string Mode = "model";
    public const string Usage = "model [steps=3] [seq=512] [prompt=128] [new=64]   ~50M llama fp32: fwd+bwd tokens/s, peak RSS, KV-cache vs no-cache generation";

    public static int Run(string[] args)
    {
        int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : fallback;
        int steps = Arg(0, 3), seq = Arg(1, 512), promptLength = Arg(2, 128), newTokens = Arg(3, 64);
        if (steps < 1 || seq < 2 || promptLength < 1 || newTokens < 1)
        {
            Console.Error.WriteLine("error: steps, seq, prompt and new must be positive (seq ≥ 2)");
            return 2;
        }

        var json = new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 1536, ["num_hidden_layers"] = 8,
            ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = 2048, ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = false,
        };
        using var model = new CausalLM(ModelFamilies.ParseConfig(json, "bench config"), ScalarType.Float32);
        RandomWeights.Initialize(model, 1);
        long parameters = model.parameters().Sum(p => p.numel());
        Console.WriteLine($"model: llama hidden 512, 8 layers, intermediate 1536, vocab 32000, heads 8/4 kv: {parameters / 1e6:F1}M parameters, float32, {get_num_threads()} torch threads");
        Console.WriteLine($"rss after build: {BenchSupport.ResidentMiB("VmRSS"):F0} MiB");
        double machineGflops = MatmulGflops();
        Console.WriteLine($"calibration: fp32 1024x1024 matmul {machineGflops:F1} GFLOP/s on this machine now (the figures below scale with it)");

        // Forward + backward, batch 1 × seq, as a training step without the optimizer.
        model.train();
        var random = new Random(7);
        long[] RandomIds(int n) => Enumerable.Range(0, n).Select(_ => (long)random.Next(3, 32000)).ToArray();
        double TrainStep()
        {
            using var scope = NewDisposeScope();
            var ids = tensor(RandomIds(seq), [1, seq]);
            var watch = Stopwatch.StartNew();
            var loss = CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), ids);
            loss.backward();
            watch.Stop();
            model.zero_grad();
            return watch.Elapsed.TotalSeconds;
        }
        TrainStep();   // warm-up: allocator and kernels
        double trainSeconds = Enumerable.Range(0, steps).Sum(_ => TrainStep());
        // 6 FLOPs per parameter per token (embedding lookup excluded) + attention's 12·layers·hidden·seq per token.
        long matrixParameters = parameters - 32000L * 512;
        double flopsPerToken = 6.0 * matrixParameters + 12.0 * 8 * 512 * seq / 2;
        double tokensPerSecond = steps * seq / trainSeconds;
        Console.WriteLine($"forward+backward: seq {seq}, {steps} steps, {tokensPerSecond:F0} tokens/s ({trainSeconds / steps:F2} s/step, ~{tokensPerSecond * flopsPerToken / 1e9:F1} GFLOP/s achieved)");
        Console.WriteLine($"peak RSS (VmHWM): {BenchSupport.ResidentMiB("VmHWM"):F0} MiB");

        // Generation: same prompt, greedy, with and without the KV cache.
        model.eval();
        foreach (var p in model.parameters()) p.grad = null;
        var prompt = RandomIds(promptLength);
        var options = new GenerationOptions { MaxNewTokens = newTokens };
        TokenGenerator.Generate(model, prompt.Take(8).ToArray(), options with { MaxNewTokens = 4 });   // warm-up
        (double Seconds, IReadOnlyList<long> Ids) Timed(GenerationOptions o)
        {
            var watch = Stopwatch.StartNew();
            var ids = TokenGenerator.Generate(model, prompt, o);
            return (watch.Elapsed.TotalSeconds, ids);
        }
        var cached = Timed(options);
        var recomputed = Timed(options with { UseCache = false });
        double cachedRate = cached.Ids.Count / cached.Seconds, recomputedRate = recomputed.Ids.Count / recomputed.Seconds;
        Console.WriteLine($"generation: prompt {promptLength}, {newTokens} new tokens, greedy");
        Console.WriteLine($"  kv cache:   {cachedRate:F1} tokens/s ({cached.Seconds:F2} s)");
        Console.WriteLine($"  no cache:   {recomputedRate:F1} tokens/s ({recomputed.Seconds:F2} s)");
        Console.WriteLine($"  ratio (cache / no cache): {cachedRate / recomputedRate:F2}x; same ids: {cached.Ids.SequenceEqual(recomputed.Ids)}");
        Console.WriteLine($"peak RSS (VmHWM) at end: {BenchSupport.ResidentMiB("VmHWM"):F0} MiB");
        return cached.Ids.SequenceEqual(recomputed.Ids) ? 0 : 1;
    }

    private static double MatmulGflops()
    {
        using var scope = NewDisposeScope();
        var a = randn(1024, 1024);
        var b = randn(1024, 1024);
        a.matmul(b);
        const int repeats = 10;
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < repeats; i++) a.matmul(b);
        return repeats * 2.0 * 1024 * 1024 * 1024 / watch.Elapsed.TotalSeconds / 1e9;
    }

}
