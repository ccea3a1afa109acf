using System.Text;
using System.Text.Json;
using SharpTune.Modeling;
using SharpTune.Tokenization;
using SharpTune.Data;

namespace SharpTune.Inference;

/// <summary>Validation loss over texts: mean negative log-likelihood per predicted token, and its exponential.</summary>
public sealed record PerplexityResult(double Loss, double Perplexity, long Tokens, int Documents, int Windows);

/// <summary>lm-evaluation-harness multiple-choice row: the model scores context + delimiter + each choice.</summary>
public sealed record MultipleChoiceItem(string Context, IReadOnlyList<string> Choices, int Gold);

/// <summary>Generation row: greedy output (cut at the stop strings) must equal the answer after trimming whitespace.</summary>
public sealed record GenerationItem(string Prompt, string Answer, IReadOnlyList<string>? Stop);

/// <summary>A held-out row's prompt, what greedy decoding produced and the labelled answer, decoded.</summary>
public sealed record ExactMatchSample(string Prompt, string Generated, string Expected);

/// <summary>How many held-out rows greedy decoding answered token for token, and the first row as a sample.</summary>
public sealed record ExactMatchResult(int Correct, int Total, ExactMatchSample? Sample);

/// <summary>One task's scores (acc, acc_norm or exact_match) and the number of rows.</summary>
public sealed record TaskResult(string Name, string Kind, int Examples, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A task file: JSONL rows of one kind, named after the file.</summary>
public sealed record EvalTask(string Name, string Path, IReadOnlyList<MultipleChoiceItem> MultipleChoice, IReadOnlyList<GenerationItem> Generation)
{
    public string Kind => MultipleChoice.Count > 0 ? "multiple_choice" : "generation";

    /// <summary>Rows with "choices" + "gold" are multiple choice; rows with "answer" (or "target") are generation tasks.</summary>
    public static EvalTask Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: eval task file not found");
        var mc = new List<MultipleChoiceItem>();
        var gen = new List<GenerationItem>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            string where = $"{path}:{lineNo}";
            JsonElement row;
            try { row = JsonDocument.Parse(line).RootElement; }
            catch (JsonException e) { throw new InvalidInputException($"{where}: not valid JSON ({e.Message})"); }
            if (row.ValueKind != JsonValueKind.Object) throw new InvalidInputException($"{where}: a row is {row.ValueKind}; expected a JSON object");
            if (row.TryGetProperty("choices", out var choices)) mc.Add(ReadMultipleChoice(row, choices, where));
            else if ((Str(row, "answer") ?? Str(row, "target")) is { } answer)
                gen.Add(new GenerationItem(Str(row, "prompt") ?? Str(row, "context") ?? Str(row, "question")
                    ?? throw new InvalidInputException($"{where}: generation row has no \"prompt\" (or \"context\"/\"question\") string"), answer, ReadStop(row, where)));
            else throw new InvalidInputException($"{where}: row has neither \"choices\" (multiple choice) nor \"answer\" (generation)");
            if (mc.Count > 0 && gen.Count > 0) throw new InvalidInputException($"{where}: mixes multiple-choice and generation rows; put each kind in its own file");
        }
        if (mc.Count + gen.Count == 0) throw new InvalidInputException($"{path}: no rows");
        return new EvalTask(System.IO.Path.GetFileNameWithoutExtension(path), path, mc, gen);
    }

    private static MultipleChoiceItem ReadMultipleChoice(JsonElement row, JsonElement choices, string where)
    {
        var context = Str(row, "context") ?? throw new InvalidInputException($"{where}: \"context\" must be a string");
        if (choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() < 2 || choices.EnumerateArray().Any(c => c.ValueKind != JsonValueKind.String))
            throw new InvalidInputException($"{where}: \"choices\" must be a list of at least 2 strings");
        var list = choices.EnumerateArray().Select(c => c.GetString()!).ToArray();
        if (!row.TryGetProperty("gold", out var gold) || gold.ValueKind != JsonValueKind.Number || !gold.TryGetInt32(out var g) || g < 0 || g >= list.Length)
            throw new InvalidInputException($"{where}: \"gold\" must be an index in [0, {list.Length - 1}]");
        return new MultipleChoiceItem(context, list, g);
    }

    private static IReadOnlyList<string>? ReadStop(JsonElement row, string where)
    {
        if (!row.TryGetProperty("stop", out var stop) || stop.ValueKind == JsonValueKind.Null) return null;
        if (stop.ValueKind == JsonValueKind.String) return [stop.GetString()!];
        if (stop.ValueKind == JsonValueKind.Array && stop.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String))
            return stop.EnumerateArray().Select(s => s.GetString()!).ToArray();
        throw new InvalidInputException($"{where}: \"stop\" must be a string or a list of strings");
    }

    private static string? Str(JsonElement row, string key) =>
        row.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}

/// <summary>
/// Perplexity, multiple-choice log-likelihood and exact-match generation scoring over one model. Generation stops at
/// <paramref name="defaults"/>' EOS ids (from the model folder: pass <see cref="GenerationDefaults.Load"/>) and the
/// tokenizer's eos token; without defaults, at config.json's EOS ids and the tokenizer's.
/// </summary>
public sealed class Evaluator(CausalLM model, HfTokenizer tokenizer, GenerationDefaults? defaults = null, int batchSize = 8)
{
    private readonly TextGenerator generator = new(model, tokenizer, defaults ?? new GenerationDefaults(model.Config.EosTokenIds.Select(e => (long)e).ToArray()));

    /// <summary>Texts are tokenized with special tokens and cut into windows of at most <paramref name="maxLength"/> tokens, each scored on its own.</summary>
    public PerplexityResult Perplexity(IReadOnlyList<string> texts, int maxLength)
    {
        if (texts.Count == 0) throw new InvalidInputException("validation data: no texts");
        maxLength = Math.Min(maxLength, model.Config.MaxPositionEmbeddings);
        if (maxLength < 2) throw new InvalidInputException($"sequence length {maxLength}: needs at least 2 tokens to score one");
        var windows = new List<long[]>();
        foreach (var text in texts)
        {
            var ids = tokenizer.Encode(text).Select(i => (long)i).ToArray();
            for (int start = 0; start < ids.Length; start += maxLength)
            {
                var window = ids[start..Math.Min(ids.Length, start + maxLength)];
                if (window.Length >= 2) windows.Add(window);
            }
        }
        if (windows.Count == 0) throw new InvalidInputException("validation data: every text is shorter than 2 tokens; nothing to score");
        double logprob = 0;
        long tokens = 0;
        foreach (var chunk in windows.Chunk(batchSize))
        {
            var result = Scorer.Score(model, new ScoreRequest(chunk));
            logprob += result.LogprobSumPerRow.Sum();
            tokens += result.NLabelTokensPerRow.Sum();
        }
        double loss = -logprob / tokens;
        return new PerplexityResult(loss, Math.Exp(loss), tokens, texts.Count, windows.Count);
    }

    /// <summary>
    /// acc: the choice with the highest summed log-likelihood is gold; acc_norm: the same after dividing by the
    /// choice's UTF-8 byte length. Tokenization follows the harness: encode(context + continuation) and take
    /// the tokens after encode(context), with trailing context spaces moved to the continuation.
    /// </summary>
    public TaskResult MultipleChoice(string name, IReadOnlyList<MultipleChoiceItem> items, string delimiter = " ")
    {
        var requests = new List<(long[] Ids, long[] Labels)>();
        foreach (var item in items)
            foreach (var choice in item.Choices) requests.Add(Request(item.Context, delimiter + choice));
        var scores = new double[requests.Count];
        int index = 0;
        foreach (var chunk in requests.Chunk(batchSize))
        {
            var result = Scorer.Score(model, new ScoreRequest(chunk.Select(c => c.Ids).ToArray(), chunk.Select(c => c.Labels).ToArray()));
            foreach (var s in result.LogprobSumPerRow) scores[index++] = s;
        }
        int correct = 0, correctNorm = 0;
        index = 0;
        foreach (var item in items)
        {
            var lls = scores.AsSpan(index, item.Choices.Count).ToArray();
            index += item.Choices.Count;
            var normed = lls.Select((ll, i) => ll / Math.Max(1, Encoding.UTF8.GetByteCount(item.Choices[i]))).ToArray();
            if (ArgMax(lls) == item.Gold) correct++;
            if (ArgMax(normed) == item.Gold) correctNorm++;
        }
        return new TaskResult(name, "multiple_choice", items.Count, new Dictionary<string, double>
        {
            ["acc"] = (double)correct / items.Count,
            ["acc_norm"] = (double)correctNorm / items.Count,
        });
    }

    /// <summary>Greedy generation of each prompt (batched), cut at its stop strings (default "\n"), compared with the answer after trimming.</summary>
    public TaskResult ExactMatch(string name, IReadOnlyList<GenerationItem> items, int maxNewTokens = 32)
    {
        int matches = 0;
        // Rows with the same stop strings share a batch.
        foreach (var group in items.GroupBy(i => string.Join("\u0000", i.Stop ?? ["\n"])))
        {
            var stop = group.First().Stop ?? ["\n"];
            foreach (var chunk in group.Chunk(batchSize))
            {
                var prompts = chunk.Select(i => generator.EncodePrompt(i.Prompt)).ToArray();
                var outputs = generator.GenerateBatch(prompts, new TextGenerationOptions { Sampling = new GenerationOptions { MaxNewTokens = maxNewTokens }, StopStrings = stop });
                for (int i = 0; i < chunk.Length; i++)
                    if (outputs[i].Text.Trim() == chunk[i].Answer.Trim()) matches++;
            }
        }
        return new TaskResult(name, "generation", items.Count, new Dictionary<string, double> { ["exact_match"] = (double)matches / items.Count });
    }

    /// <summary>
    /// Held-out accuracy for supervised rows: the prompt is every token before the first labelled one, the answer is
    /// the first labelled span; a row counts when greedy decoding reproduces that span token for token.
    /// </summary>
    public ExactMatchResult ExactMatch(IReadOnlyList<TokenizedExample> examples)
    {
        int correct = 0, total = 0;
        ExactMatchSample? sample = null;
        foreach (var example in examples)
        {
            int start = Array.FindIndex(example.Labels, l => l != TokenLabels.IgnoreIndex);
            if (start <= 0) continue;
            int end = start;
            while (end < example.Labels.Length && example.Labels[end] != TokenLabels.IgnoreIndex) end++;
            var prompt = example.InputIds[..start].Select(i => (long)i).ToArray();
            var expected = example.InputIds[start..end].Select(i => (long)i).ToArray();
            var generated = TokenGenerator.Generate(model, prompt, new GenerationOptions { MaxNewTokens = expected.Length, EosTokenIds = generator.EosTokenIds });
            total++;
            if (generated.SequenceEqual(expected)) correct++;
            sample ??= new ExactMatchSample(
                tokenizer.Decode(prompt.Select(i => (int)i), skipSpecialTokens: true),
                tokenizer.Decode(generated.Select(i => (int)i), skipSpecialTokens: true),
                tokenizer.Decode(expected.Select(i => (int)i), skipSpecialTokens: true));
        }
        return new ExactMatchResult(correct, total, sample);
    }

    public TaskResult Run(EvalTask task) =>
        task.MultipleChoice.Count > 0 ? MultipleChoice(task.Name, task.MultipleChoice) : ExactMatch(task.Name, task.Generation);

    private (long[] Ids, long[] Labels) Request(string context, string continuation)
    {
        int spaces = context.Length - context.TrimEnd().Length;
        if (spaces > 0)
        {
            continuation = context[^spaces..] + continuation;
            context = context[..^spaces];
        }
        var whole = tokenizer.Encode(context + continuation).Select(i => (long)i).ToArray();
        int contextLength = tokenizer.Encode(context).Count;
        if (contextLength >= whole.Length) contextLength = whole.Length - 1;   // continuation must keep at least one token
        // Too long for the model: drop context from the left, as the harness does.
        int limit = model.Config.MaxPositionEmbeddings;
        int drop = Math.Max(0, whole.Length - limit);
        if (drop >= contextLength) throw new InvalidInputException($"multiple-choice continuation of {whole.Length - contextLength} tokens does not fit the context of {limit}");
        var ids = whole[drop..];
        var labels = ids.Select((id, i) => i + drop < contextLength ? TokenLabels.IgnoreIndex : id).ToArray();
        return (ids, labels);
    }

    private static int ArgMax(double[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }
}

/// <summary>Everything `sharptune eval` measured, written as JSON and as a plain table.</summary>
public sealed record EvalReport(string Model, string? Adapter, PerplexityResult? Validation, IReadOnlyList<TaskResult> Tasks)
{
    public string ToJson()
    {
        var root = new Dictionary<string, object?> { ["model"] = Model, ["adapter"] = Adapter };
        if (Validation is { } v)
            root["validation"] = new Dictionary<string, object> { ["loss"] = v.Loss, ["perplexity"] = v.Perplexity, ["tokens"] = v.Tokens, ["documents"] = v.Documents, ["windows"] = v.Windows };
        root["tasks"] = Tasks.ToDictionary(t => t.Name, t => (object)new Dictionary<string, object>(t.Metrics.Select(m => KeyValuePair.Create(m.Key, (object)m.Value)))
        {
            ["kind"] = t.Kind,
            ["examples"] = t.Examples,
        });
        return JsonSerializer.Serialize(root, new JsonSerializerOptions { WriteIndented = true });
    }

    public string ToTable()
    {
        var rows = new List<string[]> { new[] { "task", "metric", "value", "n" } };
        if (Validation is { } v)
        {
            rows.Add(["validation", "loss", v.Loss.ToString("F4"), v.Tokens.ToString()]);
            rows.Add(["validation", "perplexity", v.Perplexity.ToString("F4"), v.Tokens.ToString()]);
        }
        foreach (var t in Tasks)
            foreach (var (metric, value) in t.Metrics) rows.Add([t.Name, metric, value.ToString("F4"), t.Examples.ToString()]);
        var widths = Enumerable.Range(0, 4).Select(c => rows.Max(r => r[c].Length)).ToArray();
        var text = new StringBuilder();
        foreach (var (row, i) in rows.Select((r, i) => (r, i)))
        {
            text.AppendLine(string.Join(" | ", row.Select((cell, c) => c >= 2 ? cell.PadLeft(widths[c]) : cell.PadRight(widths[c]))).TrimEnd());
            if (i == 0) text.AppendLine(string.Join("-|-", widths.Select(w => new string('-', w))));
        }
        return text.ToString();
    }
}

/// <summary>Validation texts for perplexity: JSONL rows with a text field, or a .txt file as one document.</summary>
public static class EvalData
{
    public static IReadOnlyList<string> ReadTexts(string path, string field = "text")
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: validation data file not found");
        if (path.EndsWith(".txt", StringComparison.OrdinalIgnoreCase)) return [File.ReadAllText(path)];
        var texts = new List<string>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonElement row;
            try { row = JsonDocument.Parse(line).RootElement; }
            catch (JsonException e) { throw new InvalidInputException($"{path}:{lineNo}: not valid JSON ({e.Message})"); }
            if (row.ValueKind != JsonValueKind.Object || !row.TryGetProperty(field, out var text) || text.ValueKind != JsonValueKind.String)
                throw new InvalidInputException($"{path}:{lineNo}: expected an object with a \"{field}\" string");
            texts.Add(text.GetString()!);
        }
        if (texts.Count == 0) throw new InvalidInputException($"{path}: no rows");
        return texts;
    }
}
