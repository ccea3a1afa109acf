using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Serving;
using static TorchSharp.torch;

namespace SharpTune.Bench;

/// <summary>
/// Generation speed on randomly initialised llama presets (tiny, and small ≈ 40M parameters) in float32 on the CPU:
/// greedy tokens/s at batch 1 (<see cref="TokenGenerator"/>) and batch 8 (<see cref="BatchGenerator"/>), the KV cache's
/// speed-up over recomputing the whole prefix (target ≥ 5× at 256 new tokens), and requests/s of
/// <see cref="OpenAiServer"/> on loopback serving examples/models/tiny-chat.
/// </summary>
public static class GenerateBench
{
    public const string Mode = "generate";
    public const string Usage = "generate [new=256] [smallNew=32] [requests=40] [concurrency=8]   batch 1/8 tokens/s, KV cache vs recompute (tiny, small llama), server requests/s";
    private const double TargetCacheSpeedup = 5.0;

    public static int Run(string[] args)
    {
        int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], CultureInfo.InvariantCulture) : fallback;
        int newTokens = Arg(0, 256), smallNew = Arg(1, 32), requests = Arg(2, 40), concurrency = Arg(3, 8);
        if (newTokens < 1 || smallNew < 1 || requests < 1 || concurrency < 1)
        {
            Console.Error.WriteLine("error: new, smallNew, requests and concurrency must be positive");
            return 2;
        }
        Console.WriteLine(BenchSupport.LoadLine());
        Console.WriteLine($"torch threads: {get_num_threads()}; float32, CPU, greedy, prompt 16 tokens, EOS ignored");
        bool same = Model("tiny", newTokens) & Model("small", smallNew);
        ServerRequests(requests, concurrency).GetAwaiter().GetResult();
        Console.WriteLine(BenchSupport.LoadLine());
        return same ? 0 : 1;
    }

    private static bool Model(string preset, int newTokens)
    {
        const int promptLength = 16;
        var json = (JsonObject)new Llama().Presets[preset].DeepClone();
        // The tiny preset's 256 positions would not hold prompt + 256 new tokens; the weights are random anyway.
        json["max_position_embeddings"] = Math.Max(json["max_position_embeddings"]!.GetValue<int>(), promptLength + newTokens);
        using var model = new CausalLM(ModelFamilies.ParseConfig(json, $"llama {preset} preset"), ScalarType.Float32);
        RandomWeights.Initialize(model, 1);
        model.eval();
        long parameters = model.parameters().Sum(p => p.numel());
        int vocab = model.Config.VocabSize;
        var random = new Random(11);
        long[] Prompt() => Enumerable.Range(0, promptLength).Select(_ => (long)random.Next(3, vocab)).ToArray();
        var options = new GenerationOptions { MaxNewTokens = newTokens };
        TokenGenerator.Generate(model, Prompt(), options with { MaxNewTokens = 4 });   // warm-up

        var prompt = Prompt();
        var watch = Stopwatch.StartNew();
        var cached = TokenGenerator.Generate(model, prompt, options);
        double cachedSeconds = watch.Elapsed.TotalSeconds;
        watch.Restart();
        var recomputed = TokenGenerator.Generate(model, prompt, options with { UseCache = false });
        double recomputedSeconds = watch.Elapsed.TotalSeconds;

        var prompts = Enumerable.Range(0, 8).Select(_ => (IReadOnlyList<long>)Prompt()).ToArray();
        watch.Restart();
        var batch = BatchGenerator.Generate(model, prompts, options);
        double batchSeconds = watch.Elapsed.TotalSeconds;
        long batchTokens = batch.Sum(s => (long)s.Ids.Count);

        double cachedRate = cached.Count / cachedSeconds, recomputedRate = recomputed.Count / recomputedSeconds;
        Console.WriteLine($"llama {preset}: {parameters / 1e6:F2}M parameters, {newTokens} new tokens");
        Console.WriteLine($"  batch 1, kv cache:    {cachedRate,8:F1} tokens/s ({cachedSeconds:F2} s)");
        Console.WriteLine($"  batch 1, no cache:    {recomputedRate,8:F1} tokens/s ({recomputedSeconds:F2} s)");
        Console.WriteLine($"  kv cache speed-up:    {cachedRate / recomputedRate,8:F2}x (target ≥ {TargetCacheSpeedup:F0}x at 256 new tokens); same ids: {cached.SequenceEqual(recomputed)}");
        Console.WriteLine($"  batch 8, kv cache:    {batchTokens / batchSeconds,8:F1} tokens/s ({batchTokens} tokens in {batchSeconds:F2} s; {batchTokens / batchSeconds / cachedRate:F2}x batch 1)");
        return cached.SequenceEqual(recomputed);
    }

    private static async Task ServerRequests(int requests, int concurrency)
    {
        const int maxTokens = 16;
        var modelDir = Path.Combine(BenchSupport.RepoRoot(), "examples", "models", "tiny-chat");
        var generator = TextGenerator.Load(modelDir);
        await using var server = new OpenAiServer(generator, new ServerOptions { Port = 0, ModelId = "bench" });
        await server.StartAsync();
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(2) };
        async Task<int> Send(int i)
        {
            var body = new JsonObject { ["model"] = "bench", ["prompt"] = $"Request {i}: tell me a story", ["max_tokens"] = maxTokens, ["temperature"] = 0 };
            using var response = await http.PostAsJsonAsync("/v1/completions", body);
            response.EnsureSuccessStatusCode();
            var reply = await response.Content.ReadFromJsonAsync<JsonObject>() ?? throw new InvalidOperationException("empty reply");
            return reply["usage"]!["completion_tokens"]!.GetValue<int>();
        }
        await Send(-1);   // warm-up: routing, JSON, first forward
        var gate = new SemaphoreSlim(concurrency);
        var watch = Stopwatch.StartNew();
        var counts = await Task.WhenAll(Enumerable.Range(0, requests).Select(async i =>
        {
            await gate.WaitAsync();
            try { return await Send(i); }
            finally { gate.Release(); }
        }));
        double seconds = watch.Elapsed.TotalSeconds;
        Console.WriteLine($"server ({server.Address}, tiny-chat {generator.Model.parameters().Sum(p => p.numel()) / 1e6:F2}M): {requests} /v1/completions, {concurrency} concurrent, max_tokens {maxTokens}");
        Console.WriteLine($"  {requests / seconds:F1} requests/s, {counts.Sum() / seconds:F0} completion tokens/s ({seconds:F2} s)");
        await server.StopAsync();
    }
}
