using SharpTune.Modeling;
using SharpTune.Tokenization;

namespace SharpTune.Inference;

/// <summary>Decoding settings for text: the token-level options plus stop strings.</summary>
public sealed record TextGenerationOptions
{
    public GenerationOptions Sampling { get; init; } = new();
    /// <summary>Generation ends when the decoded text contains one of these; the text is cut just before it.</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];
}

/// <summary>One generated text: the completion, its ids, token counts and why it ended.</summary>
public sealed record TextCompletion(string Text, IReadOnlyList<long> Ids, int PromptTokens, FinishReason Finish)
{
    public int CompletionTokens => Ids.Count;
}

/// <summary>A chat turn as the chat template sees it.</summary>
public sealed record ChatMessage(string Role, string Content)
{
    public IReadOnlyDictionary<string, object?> ToTemplateValue() => new Dictionary<string, object?> { ["role"] = Role, ["content"] = Content };
}

/// <summary>
/// Text in, text out: encodes prompts (plain or through the chat template), decodes with the batch generator and
/// streams decoded text. Not thread-safe: one generation at a time (the server queues requests in front of it).
/// </summary>
public sealed class TextGenerator(CausalLM model, HfTokenizer tokenizer, GenerationDefaults defaults)
{
    public CausalLM Model { get; } = model;
    public HfTokenizer Tokenizer { get; } = tokenizer;

    /// <summary>EOS ids used when the options name none: the model folder's plus the tokenizer's eos token.</summary>
    public IReadOnlyList<long> EosTokenIds { get; } = defaults.StopTokenIds(tokenizer);

    public int ContextLength => Model.Config.MaxPositionEmbeddings;

    /// <summary>What generating from a model folder needs: its weights (through <see cref="ModelLoader"/>), tokenizer and generation defaults.</summary>
    /// <param name="tokenizerDir">where tokenizer.json lives; default the model folder.</param>
    public static TextGenerator Load(string modelDir, ModelLoadOptions? options = null, string? tokenizerDir = null)
    {
        var tokenizer = HfTokenizer.FromDirectory(tokenizerDir ?? modelDir);
        var model = ModelLoader.Load(modelDir, options);
        try
        {
            return new TextGenerator(model, tokenizer, GenerationDefaults.Load(modelDir, model.Config));
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Plain text prompt, with the tokenizer's special tokens (BOS) as transformers adds them.</summary>
    public IReadOnlyList<long> EncodePrompt(string prompt)
    {
        if (string.IsNullOrEmpty(prompt)) throw new InvalidInputException("prompt: empty; give some text");
        return Tokenizer.Encode(prompt).Select(i => (long)i).ToArray();
    }

    /// <summary>Messages rendered by the chat template with the assistant prompt appended; the template writes its own special tokens.</summary>
    public IReadOnlyList<long> EncodeChat(IReadOnlyList<ChatMessage> messages)
    {
        if (messages.Count == 0) throw new InvalidInputException("messages: empty; give at least one message");
        var text = RenderChat(messages);
        return Tokenizer.Encode(text, addSpecialTokens: false).Select(i => (long)i).ToArray();
    }

    public string RenderChat(IReadOnlyList<ChatMessage> messages) =>
        Tokenizer.ApplyChatTemplate(messages.Select(m => m.ToTemplateValue()).ToArray(), addGenerationPrompt: true);

    public TextCompletion Generate(IReadOnlyList<long> promptIds, TextGenerationOptions options, Action<string>? onText = null, CancellationToken cancellation = default) =>
        GenerateBatch([promptIds], options, onText is null ? null : (_, piece) => onText(piece), cancellation)[0];

    /// <summary>Generates for several prompts in one left-padded batch; onText gets (row, piece) as text becomes final.</summary>
    public IReadOnlyList<TextCompletion> GenerateBatch(IReadOnlyList<IReadOnlyList<long>> prompts, TextGenerationOptions options,
        Action<int, string>? onText = null, CancellationToken cancellation = default) =>
        GenerateBatch(prompts, prompts.Select(_ => options).ToArray(), onText, prompts.Select(_ => cancellation).ToArray());

    /// <summary>Rows with settings and cancellation of their own (separate requests batched together); rows sharing one options object share its seed.</summary>
    public IReadOnlyList<TextCompletion> GenerateBatch(IReadOnlyList<IReadOnlyList<long>> prompts, IReadOnlyList<TextGenerationOptions> rowOptions,
        Action<int, string>? onText, IReadOnlyList<CancellationToken> rowCancellation)
    {
        var samplingOf = new Dictionary<TextGenerationOptions, GenerationOptions>(ReferenceEqualityComparer.Instance);
        foreach (var o in rowOptions)
            // A row's own stop ids (--stop-token-ids) come on top of the model's EOS ids, never instead of them.
            if (!samplingOf.ContainsKey(o)) samplingOf[o] = o.Sampling with { EosTokenIds = EosTokenIds.Concat(o.Sampling.EosTokenIds).Distinct().ToArray() };
        var streams = rowOptions.Select(o => new StreamingDetokenizer(Tokenizer, o.StopStrings.Where(s => s.Length > 0).ToArray())).ToArray();
        var results = BatchGenerator.Generate(Model, prompts, rowOptions.Select(o => samplingOf[o]).ToArray(), (row, id) =>
        {
            var piece = streams[row].Push(id);
            if (piece.Length > 0) onText?.Invoke(row, piece);
            return streams[row].StopHit;
        }, rowCancellation);
        var completions = new TextCompletion[prompts.Count];
        for (int r = 0; r < prompts.Count; r++)
        {
            var rest = streams[r].Finish();
            if (rest.Length > 0) onText?.Invoke(r, rest);
            completions[r] = new TextCompletion(streams[r].Text, results[r].Ids, prompts[r].Count, results[r].Finish);
        }
        return completions;
    }
}
