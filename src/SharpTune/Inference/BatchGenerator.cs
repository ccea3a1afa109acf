using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Inference;

/// <summary>Why a sequence ended: an EOS id or a stop string (Stop), the token budget or the context (Length), or the caller (Cancelled).</summary>
public enum FinishReason { Stop, Length, Cancelled }

/// <summary>The new token ids of one row (EOS included when it ended the row, as transformers returns it).</summary>
public sealed record GeneratedSequence(IReadOnlyList<long> Ids, FinishReason Finish);

/// <summary>
/// Decodes several prompts at once: rows are left-padded to one width, position ids are cumsum(mask) − 1 as in
/// transformers, and the attention mask covers the cached and the new tokens. Each row stops on its own; finished
/// rows keep feeding a masked pad token until every row is done.
/// </summary>
public static class BatchGenerator
{
    /// <param name="onToken">called with (row, id) as soon as the id is chosen; returning true ends that row with
    /// <see cref="FinishReason.Stop"/> (stop strings).</param>
    public static IReadOnlyList<GeneratedSequence> Generate(CausalLM model, IReadOnlyList<IReadOnlyList<long>> prompts, GenerationOptions options,
        Func<int, long, bool>? onToken = null, CancellationToken cancellation = default) =>
        Generate(model, prompts, prompts.Select(_ => options).ToArray(), onToken, prompts.Select(_ => cancellation).ToArray());

    /// <summary>
    /// Rows with options and cancellation of their own (a server batching separate requests): each row samples with its
    /// own settings and budget, and a cancelled row ends alone. Rows that share one seeded options object share its
    /// random generator, as one request's rows do.
    /// </summary>
    public static IReadOnlyList<GeneratedSequence> Generate(CausalLM model, IReadOnlyList<IReadOnlyList<long>> prompts, IReadOnlyList<GenerationOptions> rowOptions,
        Func<int, long, bool>? onToken, IReadOnlyList<CancellationToken> rowCancellation)
    {
        if (prompts.Count == 0) throw new InvalidInputException("prompts: none given; give at least one prompt");
        if (rowOptions.Count != prompts.Count || rowCancellation.Count != prompts.Count)
            throw new ArgumentException("one options entry and one cancellation token per prompt");
        foreach (var o in rowOptions.Distinct()) o.Validated();
        if (rowOptions.Any(o => o.UseCache != rowOptions[0].UseCache)) throw new ArgumentException("rows of one batch either all use the KV cache or none");
        int limit = model.Config.MaxPositionEmbeddings;
        for (int r = 0; r < prompts.Count; r++) CheckPrompt(model.Config, prompts[r], prompts.Count == 1 ? "prompt" : $"prompt {r}");

        int rows = prompts.Count, width = prompts.Max(p => p.Count);
        long pad = model.Config.PadTokenId ?? model.Config.EosTokenIds.FirstOrDefault();
        var contexts = prompts.Select(p => new List<long>(p)).ToArray();
        var produced = prompts.Select(_ => new List<long>()).ToArray();
        var finish = new FinishReason?[rows];
        var nextPosition = prompts.Select(p => (long)p.Count).ToArray();

        using var noGrad = no_grad();
        using var cache = rowOptions[0].UseCache ? new KvCache(model.Config.NumHiddenLayers) : null;
        // By reference: two requests with equal settings still sample independently.
        var generatorOf = new Dictionary<GenerationOptions, TorchSharp.torch.Generator?>(ReferenceEqualityComparer.Instance);
        foreach (var o in rowOptions)
            if (!generatorOf.ContainsKey(o)) generatorOf[o] = o.Seed is { } seed ? new TorchSharp.torch.Generator((ulong)seed) : null;
        bool allPlainGreedy = rowOptions.All(o => o.IsGreedy && o.RepetitionPenalty == 1.0);
        // Rows as the model sees them: left padding, then every chosen (or pad) token.
        var fed = new List<long>[rows];
        var fedMask = new List<long>[rows];
        for (int r = 0; r < rows; r++)
        {
            int padding = width - prompts[r].Count;
            fed[r] = [.. Enumerable.Repeat(pad, padding), .. prompts[r]];
            fedMask[r] = [.. Enumerable.Repeat(0L, padding), .. Enumerable.Repeat(1L, prompts[r].Count)];
        }

        int maxSteps = Enumerable.Range(0, rows).Max(r => Math.Min(rowOptions[r].MaxNewTokens, limit - prompts[r].Count));
        for (int step = 0; step < maxSteps && finish.Any(f => f is null); step++)
        {
            using var scope = NewDisposeScope();
            var logits = NextLogits(model, fed, fedMask, cache, step);   // (B, V) float32
            var chosen = new long?[rows];
            // Plain greedy needs no per-row processing: one argmax over the batch, one read-back.
            var greedy = allPlainGreedy ? logits.argmax(1).data<long>().ToArray() : null;
            for (int r = 0; r < rows; r++)
            {
                if (finish[r] is not null) continue;
                if (rowCancellation[r].IsCancellationRequested) { finish[r] = FinishReason.Cancelled; continue; }
                var options = rowOptions[r];
                long next = greedy?[r] ?? TokenGenerator.Choose(logits[r], contexts[r], options, generatorOf[options]);
                contexts[r].Add(next);
                produced[r].Add(next);
                nextPosition[r]++;
                chosen[r] = next;
                bool stopped = onToken?.Invoke(r, next) ?? false;
                if (stopped || options.EosTokenIds.Contains(next)) finish[r] = FinishReason.Stop;
                else if (produced[r].Count >= options.MaxNewTokens || nextPosition[r] >= limit) finish[r] = FinishReason.Length;
            }
            for (int r = 0; r < rows; r++)
            {
                // A finished row still feeds a token so that the batch keeps one shape; it is masked out, so its
                // position stops growing (it could otherwise run past the context) and nothing attends to it.
                fed[r].Add(chosen[r] ?? pad);
                fedMask[r].Add(chosen[r] is null ? 0 : 1);
            }
        }
        for (int r = 0; r < rows; r++) finish[r] ??= rowCancellation[r].IsCancellationRequested ? FinishReason.Cancelled : FinishReason.Length;
        return Enumerable.Range(0, rows).Select(r => new GeneratedSequence(produced[r], finish[r]!.Value)).ToArray();
    }

    /// <summary>The prompt checks every entry point shares: not empty, fits the context with room for one token, ids in the vocabulary.</summary>
    public static void CheckPrompt(ModelConfig config, IReadOnlyList<long> prompt, string what)
    {
        if (prompt.Count == 0) throw new InvalidInputException($"{what}: empty; give at least one token");
        if (prompt.Count >= config.MaxPositionEmbeddings)
            throw new InvalidInputException($"{what}: {prompt.Count} tokens do not fit the model's context of {config.MaxPositionEmbeddings} tokens (at most {config.MaxPositionEmbeddings - 1} leave room for one new token)");
        foreach (var id in prompt)
            if (id < 0 || id >= config.VocabSize) throw new InvalidInputException($"{what}: token id {id} is outside the vocabulary [0, {config.VocabSize})");
    }

    /// <summary>Next-token logits of every row: the whole padded rows at the first step (or always without a cache), then only the last token.</summary>
    private static Tensor NextLogits(CausalLM model, List<long>[] fed, List<long>[] fedMask, KvCache? cache, int step)
    {
        int rows = fed.Length, total = fed[0].Count;
        int start = cache is null || step == 0 ? 0 : total - 1;
        int length = total - start;
        var ids = new long[rows * length];
        var mask = new long[rows * total];
        var positions = new long[rows * length];
        for (int r = 0; r < rows; r++)
        {
            long position = -1;
            for (int t = 0; t < total; t++)
            {
                mask[r * total + t] = fedMask[r][t];
                position += fedMask[r][t];
                if (t < start) continue;
                ids[r * length + t - start] = fed[r][t];
                // transformers: position_ids = cumsum(mask) − 1, with padding positions set to 1 (they are masked anyway).
                positions[r * length + t - start] = fedMask[r][t] == 0 ? 1 : position;
            }
        }
        var idsTensor = tensor(ids, [rows, length]).to(model.Device);
        var maskTensor = tensor(mask, [rows, total]).to(model.Device);
        var positionTensor = tensor(positions, [rows, length]).to(model.Device);
        var hidden = model.Hidden(new ForwardBatch(idsTensor, maskTensor, positionTensor, Cache: cache));
        // Sampling runs on the host over (B, V): one small copy per step.
        return model.Logits(hidden[.., -1, ..]).cpu();
    }
}
