using SharpTune.Config;
using SharpTune.Tokenization;

namespace SharpTune.Data;

/// <summary>Picks the chat template text a dataset uses, as axolotl's get_chat_template does: the tokenizer's, a named one, or chat_template_jinja.</summary>
public static class ChatTemplates
{
    /// <param name="name">chat_template value: null / tokenizer_default, tokenizer_default_fallback_NAME, jinja, or a name of <see cref="BuiltInChatTemplates.Names"/> (validate has refused any other).</param>
    /// <param name="jinja">chat_template_jinja belonging to the same level (the dataset's with a dataset chat_template, else the top-level one).</param>
    /// <returns>The template text; null when none is set and <paramref name="required"/> is false.</returns>
    public static string? Resolve(string? name, string? jinja, HfTokenizer tokenizer, string key, bool required)
    {
        switch (name)
        {
            case null or BuiltInChatTemplates.TokenizerDefault:
                if (tokenizer.ChatTemplate is { } own) return own;
                if (!required) return null;
                throw new InvalidInputException($"{key}: the tokenizer has no chat_template and none is configured; set chat_template: chatml (or llama3, jinja with chat_template_jinja)");
            case BuiltInChatTemplates.Jinja:
                if (jinja == null) throw new InvalidInputException($"{key}: chat_template: jinja needs chat_template_jinja: (template text or a .jinja file)");
                if (File.Exists(jinja)) return File.ReadAllText(jinja);
                if (jinja.Contains("{%") || jinja.Contains("{{")) return jinja;
                throw new InvalidInputException($"chat_template_jinja: {jinja} is neither a template nor an existing file");
        }
        if (name.StartsWith(BuiltInChatTemplates.TokenizerDefaultFallbackPrefix, StringComparison.Ordinal))
            return tokenizer.ChatTemplate ?? BuiltInChatTemplates.Get(name[BuiltInChatTemplates.TokenizerDefaultFallbackPrefix.Length..]);
        return BuiltInChatTemplates.Get(name);
    }

    /// <summary>The chat_template / chat_template_jinja pair a dataset uses: its own when it names a chat_template (as axolotl's extract_chat_template_args), else the top-level pair.</summary>
    public static (string? Name, string? Jinja) Choice(DatasetConfig dataset, TrainConfig config) =>
        dataset.ChatTemplate != null ? (dataset.ChatTemplate, dataset.ChatTemplateJinja) : (config.ChatTemplate, config.ChatTemplateJinja);
}

/// <summary>
/// Renders a conversation with a chat template and marks which characters are trained: the content of each message
/// whose role is in roles_to_train, and the end-of-turn token after it as train_on_eos says. Message positions are found
/// in the full rendering (so that the tokens trained are exactly the tokens the model sees), starting the search of
/// message i after the rendering of messages[..i] plus the generation prompt when that is a prefix of the full text.
/// </summary>
public sealed class ChatLabeler
{
    private static readonly string[] EndOfTurnCandidates =
        ["<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|eom_id|>", "<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"];

    private readonly HfTokenizer _tokenizer;
    private readonly string _template;
    private readonly HashSet<string> _roles;
    private readonly TrainOnEos _trainOnEos;
    private readonly bool _trainAll;

    /// <summary>Special tokens (as text) that close a turn in this tokenizer.</summary>
    public IReadOnlyList<string> EndOfTurnTokens { get; }

    public ChatLabeler(HfTokenizer tokenizer, string template, IReadOnlyList<string> rolesToTrain, TrainOnEos trainOnEos, bool trainOnInputs)
    {
        _tokenizer = tokenizer;
        _template = template;
        _roles = new HashSet<string>(rolesToTrain, StringComparer.Ordinal);
        _trainOnEos = trainOnEos;
        _trainAll = trainOnInputs;
        var eot = new List<string>();
        if (tokenizer.EosToken is { } eos) eot.Add(eos);
        foreach (var c in EndOfTurnCandidates)
            if (!eot.Contains(c) && tokenizer.TokenToId(c) != null && tokenizer.AddedTokens.Any(t => t.Content == c)) eot.Add(c);
        EndOfTurnTokens = eot;
    }

    /// <summary>Renders with the template; a template error (e.g. "roles must alternate") is reported as a bad row.</summary>
    public string Render(IReadOnlyList<IReadOnlyDictionary<string, object?>> messages, bool addGenerationPrompt)
    {
        try { return _tokenizer.ApplyChatTemplate(messages, addGenerationPrompt, null, _template); }
        catch (InvalidInputException e) { throw new RowException($"the chat template rejected the conversation: {e.Message}"); }
    }

    /// <summary>Rendering of a prefix of the conversation, or null when the template refuses it (some insist on a final user turn).</summary>
    private string? TryRenderPrefix(IReadOnlyList<IReadOnlyDictionary<string, object?>> messages, bool addGenerationPrompt)
    {
        try { return _tokenizer.ApplyChatTemplate(messages, addGenerationPrompt, null, _template); }
        catch (InvalidInputException) { return null; }
    }

    public LabeledText Label(IReadOnlyList<IReadOnlyDictionary<string, object?>> messages)
    {
        string full = Render(messages, addGenerationPrompt: false);
        if (_trainAll) return new LabeledText(full, [(0, full.Length)], AddSpecialTokens: false, AppendEos: false, TrainEos: false);

        var starts = new int[messages.Count];
        var ends = new int[messages.Count];
        bool[] trained = messages.Select(m => m.GetValueOrDefault("training") is System.Text.Json.JsonElement t && t.ValueKind is System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False
            ? t.GetBoolean()
            : _roles.Contains((string)m["role"]!)).ToArray();
        int cursor = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            string content = (string)(messages[i]["content"] ?? "");
            int from = cursor;
            if (trained[i] && i > 0)
            {
                string? before = TryRenderPrefix(messages.Take(i).ToList(), addGenerationPrompt: (string)messages[i]["role"]! == "assistant");
                if (before != null && before.Length > cursor && full.StartsWith(before, StringComparison.Ordinal)) from = before.Length;
            }
            (starts[i], ends[i]) = Find(full, content, from);
            if (starts[i] < 0)
            {
                if (trained[i])
                    throw new RowException($"message {i} ({messages[i]["role"]}) does not appear in the chat template's output, so its tokens cannot be labelled" +
                                           $" (the template drops or rewrites it: \"{DatasetSources.Shorten(content, 60)}\")");
                starts[i] = ends[i] = cursor;
                continue;
            }
            cursor = ends[i];
        }

        int lastTrained = Array.LastIndexOf(trained, true);
        var spans = new List<(int, int)>();
        for (int i = 0; i < messages.Count; i++)
        {
            if (trained[i] && ends[i] > starts[i]) spans.Add((starts[i], ends[i]));
            bool trainEot = _trainOnEos switch
            {
                TrainOnEos.All => true,
                TrainOnEos.Turn => trained[i],
                TrainOnEos.Last => i == lastTrained,
                _ => false,
            };
            if (!trainEot) continue;
            // The turn's end token lies between this message's content and the next message's.
            int limit = i + 1 < messages.Count ? starts[i + 1] : full.Length;
            var eot = FindEndOfTurn(full, ends[i], limit);
            if (eot.Start >= 0) spans.Add(eot);
        }
        return new LabeledText(full, spans, AddSpecialTokens: false, AppendEos: false, TrainEos: false);
    }

    /// <summary>The text after the rendered prompt for prompt + one assistant answer, up to and including its end-of-turn token.</summary>
    public string CompletionText(IReadOnlyList<IReadOnlyDictionary<string, object?>> prompt, string promptText, string answer)
    {
        var all = prompt.Append(new Dictionary<string, object?> { ["role"] = "assistant", ["content"] = answer }).ToList();
        string full = Render(all, addGenerationPrompt: false);
        string completion;
        if (full.StartsWith(promptText, StringComparison.Ordinal)) completion = full[promptText.Length..];
        else
        {
            var (start, _) = Find(full, answer, 0);
            completion = start >= 0 ? full[start..] : answer;
        }
        var (answerStart, answerEnd) = Find(completion, answer, 0);
        var eot = FindEndOfTurn(completion, answerStart >= 0 ? answerEnd : 0, completion.Length);
        if (eot.Start >= 0) return completion[..eot.End];
        return completion.TrimEnd() + (_tokenizer.EosToken ?? "");
    }

    private static (int Start, int End) Find(string text, string content, int from)
    {
        if (content.Length == 0) return (from, from);
        int at = text.IndexOf(content, from, StringComparison.Ordinal);
        if (at >= 0) return (at, at + content.Length);
        string trimmed = content.Trim(); // templates often trim content (llama3: message['content'] | trim)
        if (trimmed.Length == 0) return (from, from);
        at = text.IndexOf(trimmed, from, StringComparison.Ordinal);
        return at >= 0 ? (at, at + trimmed.Length) : (-1, -1);
    }

    private (int Start, int End) FindEndOfTurn(string text, int from, int limit)
    {
        int best = -1, bestEnd = -1;
        foreach (var token in EndOfTurnTokens)
        {
            int at = text.IndexOf(token, from, StringComparison.Ordinal);
            if (at >= 0 && at + token.Length <= limit && (best < 0 || at < best)) { best = at; bestEnd = at + token.Length; }
        }
        return (best, bestEnd);
    }
}
