namespace SharpTune.Tokenization;

/// <summary>A rendered conversation and the [Start, End) char ranges produced by assistant messages.</summary>
public sealed record ChatRender(string Text, IReadOnlyList<(int Start, int End)> AssistantSpans);

/// <summary>Token ids of a rendered conversation and, per token, whether it belongs to an assistant message (train on these).</summary>
public sealed record ChatEncoding(string Text, IReadOnlyList<int> Ids, IReadOnlyList<bool> AssistantMask);

public static class AssistantSpans
{
    /// <summary>
    /// Finds each assistant message's text by rendering prefix by prefix: the conversation up to the message with
    /// add_generation_prompt=true, then including it. What the message adds (its content and end-of-turn marker)
    /// is its span. Works for every template, with or without {% generation %} blocks; a template whose earlier output
    /// changes when later messages arrive (e.g. one that drops past reasoning) is reported with the message index.
    /// </summary>
    public static ChatRender Render(HfTokenizer tokenizer, IReadOnlyList<IReadOnlyDictionary<string, object?>> messages,
        IReadOnlyDictionary<string, object?>? extraVariables = null, string? templateOverride = null)
    {
        var full = tokenizer.ApplyChatTemplate(messages, addGenerationPrompt: false, extraVariables, templateOverride);
        var spans = new List<(int, int)>();
        for (var i = 0; i < messages.Count; i++)
        {
            if (RoleOf(messages[i]) != "assistant") continue;
            var before = tokenizer.ApplyChatTemplate(messages.Take(i).ToList(), addGenerationPrompt: true, extraVariables, templateOverride);
            var through = tokenizer.ApplyChatTemplate(messages.Take(i + 1).ToList(), addGenerationPrompt: false, extraVariables, templateOverride);
            if (!through.StartsWith(before, StringComparison.Ordinal) || !full.StartsWith(through, StringComparison.Ordinal))
                throw new InvalidInputException(
                    $"messages[{i}]: the chat template renders earlier turns differently once later messages are added, so the assistant span cannot be located by prefix; use a template with {{% generation %}} markers or train on the whole text");
            if (through.Length > before.Length) spans.Add((before.Length, through.Length));
        }
        return new ChatRender(full, spans);
    }

    private static string? RoleOf(IReadOnlyDictionary<string, object?> message) => message.GetValueOrDefault("role") switch
    {
        string s => s,
        System.Text.Json.JsonElement { ValueKind: System.Text.Json.JsonValueKind.String } e => e.GetString(),
        var other => other?.ToString(),
    };

    /// <summary>Renders, encodes (no extra special tokens, as apply_chat_template does) and marks assistant tokens.</summary>
    public static ChatEncoding Encode(HfTokenizer tokenizer, IReadOnlyList<IReadOnlyDictionary<string, object?>> messages,
        IReadOnlyDictionary<string, object?>? extraVariables = null, string? templateOverride = null)
    {
        var render = Render(tokenizer, messages, extraVariables, templateOverride);
        var encoding = tokenizer.EncodeWithOffsets(render.Text, addSpecialTokens: false);
        var mask = encoding.Offsets.Select(o => render.AssistantSpans.Any(s => o.Start >= s.Start && o.End <= s.End && o.End > o.Start)).ToArray();
        return new ChatEncoding(render.Text, encoding.Ids, mask);
    }
}
