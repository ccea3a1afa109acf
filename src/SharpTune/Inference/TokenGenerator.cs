using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Inference;

/// <summary>Decoding settings. Temperature 0 (or null) means greedy.</summary>
public sealed record GenerationOptions
{
    public int MaxNewTokens { get; init; } = 128;
    public double? Temperature { get; init; }
    public int? TopK { get; init; }
    public double? TopP { get; init; }
    public double? MinP { get; init; }
    public double RepetitionPenalty { get; init; } = 1.0;
    public long? Seed { get; init; }
    /// <summary>Generation stops after any of these ids (it is included in the output).</summary>
    public IReadOnlyList<long> EosTokenIds { get; init; } = [];
    /// <summary>false recomputes the whole prefix each step (for testing and benchmarks).</summary>
    public bool UseCache { get; init; } = true;

    public bool IsGreedy => Temperature is null or 0;

    public GenerationOptions Validated()
    {
        if (MaxNewTokens < 1) throw new InvalidInputException($"max_new_tokens: {MaxNewTokens} is invalid; expected an integer ≥ 1");
        if (Temperature is < 0) throw new InvalidInputException($"temperature: {Temperature} is invalid; expected a number ≥ 0");
        if (TopK is < 1) throw new InvalidInputException($"top_k: {TopK} is invalid; expected an integer ≥ 1");
        if (TopP is <= 0 or > 1) throw new InvalidInputException($"top_p: {TopP} is invalid; expected a number in (0, 1]");
        if (MinP is < 0 or > 1) throw new InvalidInputException($"min_p: {MinP} is invalid; expected a number in [0, 1]");
        if (RepetitionPenalty <= 0) throw new InvalidInputException($"repetition_penalty: {RepetitionPenalty} is invalid; expected a number > 0");
        return this;
    }
}

/// <summary>Autoregressive decoding of one prompt with a KV cache: one prefill pass, then one token per step.</summary>
public static class TokenGenerator
{
    /// <param name="onToken">called with each new id as soon as it is chosen (streaming).</param>
    public static IReadOnlyList<long> Generate(CausalLM model, IReadOnlyList<long> promptIds, GenerationOptions options, Action<long>? onToken = null)
    {
        options.Validated();
        if (promptIds.Count == 0) throw new InvalidInputException("prompt: empty; give at least one token");
        int limit = model.Config.MaxPositionEmbeddings;
        if (promptIds.Count >= limit)
            throw new InvalidInputException($"prompt: {promptIds.Count} tokens do not fit the model's context of {limit} tokens");
        foreach (var id in promptIds)
            if (id < 0 || id >= model.Config.VocabSize) throw new InvalidInputException($"prompt: token id {id} is outside the vocabulary [0, {model.Config.VocabSize})");
        using var noGrad = no_grad();
        using var cache = options.UseCache ? new KvCache(model.Config.NumHiddenLayers) : null;
        var generator = options.Seed is { } seed ? new TorchSharp.torch.Generator((ulong)seed) : null;
        var all = new List<long>(promptIds);
        var produced = new List<long>();
        int steps = Math.Min(options.MaxNewTokens, limit - promptIds.Count);
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            var input = cache is null || step == 0 ? all : [all[^1]];
            using var ids = tensor(input.ToArray(), [1, input.Count]).to(model.Device);
            var hidden = model.Hidden(new ForwardBatch(ids, Cache: cache));
            var logits = model.Logits(hidden[.., -1, ..]).squeeze(0).cpu();   // (V) float32, on the host for sampling
            long next = Choose(logits, all, options, generator);
            all.Add(next);
            produced.Add(next);
            onToken?.Invoke(next);
            if (options.EosTokenIds.Contains(next)) break;
        }
        return produced;
    }

    /// <summary>Next-token choice with transformers' logits processors, in its order: repetition penalty, temperature, top-k, top-p, min-p.</summary>
    public static long Choose(Tensor logits, IReadOnlyList<long> context, GenerationOptions options, TorchSharp.torch.Generator? generator)
    {
        using var scope = NewDisposeScope();
        if (options.RepetitionPenalty != 1.0)
        {
            using var seen = tensor(context.Distinct().ToArray());
            var values = logits.index_select(0, seen);
            var penalised = where(values < 0, values * options.RepetitionPenalty, values / options.RepetitionPenalty);
            logits = logits.scatter(0, seen, penalised);
        }
        if (options.IsGreedy) return logits.argmax().item<long>();
        logits = logits / options.Temperature!.Value;
        if (options.TopK is { } k && k < logits.shape[0])
        {
            var kth = logits.topk(k).values[-1];
            logits = logits.masked_fill(logits < kth, double.NegativeInfinity);
        }
        if (options.TopP is { } p && p < 1)
        {
            var (sorted, order) = logits.sort(descending: false);
            var cumulative = sorted.softmax(-1).cumsum(-1);
            var removeSorted = cumulative <= 1 - p;
            removeSorted[-1] = tensor(false);   // keep at least one token
            var remove = removeSorted.scatter(0, order, removeSorted);
            logits = logits.masked_fill(remove, double.NegativeInfinity);
        }
        if (options.MinP is { } minP && minP > 0)
        {
            var probs = logits.softmax(-1);
            var threshold = probs.max() * minP;
            logits = logits.masked_fill(probs < threshold, double.NegativeInfinity);
        }
        var distribution = logits.softmax(-1);
        return distribution.multinomial(1, generator: generator).item<long>();
    }
}
