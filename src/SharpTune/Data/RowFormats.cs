using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Tokenization;

namespace SharpTune.Data;

/// <summary>A malformed row; the pipeline prefixes the file:row it came from.</summary>
public sealed class RowException(string message) : Exception(message);

/// <summary>Text to tokenize and the character spans of it that carry labels; EOS appended as a token when asked.</summary>
public sealed record LabeledText(string Text, IReadOnlyList<(int Start, int End)> TrainedSpans, bool AddSpecialTokens, bool AppendEos, bool TrainEos);

/// <summary>A preference row rendered to text: the prompt and the two completions (each ending with the end-of-turn token).</summary>
public sealed record PreferenceTexts(string Prompt, string Chosen, string Rejected, bool PromptAddsSpecialTokens);

/// <summary>An unpaired (KTO) row rendered to text: the prompt, one completion (ending with the end-of-turn token) and its label.</summary>
public sealed record UnpairedTexts(string Prompt, string Completion, bool Desirable, bool PromptAddsSpecialTokens);

/// <summary>The row formats a `type:` may name.</summary>
public enum RowFormatKind { Alpaca, ShareGpt, ChatTemplate, Completion, Pretrain, InputOutput, Preference, Prompt }

/// <summary>
/// Turns one dataset row (a JSON object) into labelled text following one `type:`, with the field names,
/// role mappings and template of its `datasets:` entry.
/// </summary>
public sealed class RowFormatter
{
    public const string SupportedTypes = "alpaca, sharegpt, chat_template (or messages), completion, pretrain, input_output, and with rl: " +
                                         "preference, kto or one of axolotl's layouts (chat_template.default, chatml.intel, llama3.ultra, ...; docs/datasets.md)";

    // axolotl's alpaca prompt, byte for byte, so that models trained there and here see the same text.
    internal const string AlpacaPreamble = "Below is an instruction that describes a task, paired with an input that provides further context. " +
                                           "Write a response that appropriately completes the request.\n\n";
    internal const string AlpacaPreambleNoInput = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n";

    private static readonly Dictionary<string, string[]> DefaultRoles = new()
    {
        ["user"] = ["user", "human"],
        ["assistant"] = ["assistant", "gpt", "model", "bot"],
        ["system"] = ["system"],
        ["tool"] = ["tool", "function", "ipython"],
    };

    private readonly DatasetConfig _dataset;
    private readonly HfTokenizer _tokenizer;
    private readonly ChatLabeler? _chat;
    private readonly PreferenceLayout? _layout;
    private readonly bool _trainOnInputs;

    public RowFormatKind Kind { get; }

    public RowFormatter(DatasetConfig dataset, TrainConfig config, HfTokenizer tokenizer, string key, bool preference)
    {
        _dataset = dataset;
        _tokenizer = tokenizer;
        _trainOnInputs = config.TrainOnInputs;
        Kind = config.Rl == RlType.Grpo ? RowFormatKind.Prompt : ParseKind(dataset.Type, key, preference);
        if (Kind is RowFormatKind.ShareGpt or RowFormatKind.ChatTemplate or RowFormatKind.Preference or RowFormatKind.Prompt)
        {
            var (templateName, templateJinja) = ChatTemplates.Choice(dataset, config);
            string? template = ChatTemplates.Resolve(templateName, templateJinja, tokenizer, key,
                required: Kind is not (RowFormatKind.Preference or RowFormatKind.Prompt) || PreferenceLayout.NeedsTemplate(dataset.Type));
            if (template != null)
            {
                try
                {
                    _chat = new ChatLabeler(tokenizer, template, dataset.RolesToTrain.Count > 0 ? dataset.RolesToTrain : ["assistant"],
                        dataset.TrainOnEos ?? TrainOnEos.Turn, config.TrainOnInputs,
                        new ChatLabelOptions { EotTokens = config.EotTokens, TrainOnEot = dataset.TrainOnEot, MessageFieldTraining = dataset.MessageFieldTraining });
                }
                catch (InvalidInputException e) { throw new InvalidInputException($"{key}: {e.Message}"); }
            }
        }
        if (Kind == RowFormatKind.Preference && config.Rl is { } rl) _layout = PreferenceLayout.For(dataset, rl, _chat, key);
    }

    public static RowFormatKind ParseKind(string? type, string key, bool preference)
    {
        string t = (type ?? "").Trim().ToLowerInvariant();
        if (preference)
        {
            if (t is "chat_template" or "preference" or "dpo" or "orpo" or "simpo" or "kto" || t.StartsWith("chat_template.") || t.StartsWith("chatml.")
                || t.StartsWith("llama3.") || t.StartsWith("user_defined"))
                return RowFormatKind.Preference;
            throw new InvalidInputException($"{key}.type: {type ?? "(missing)"} is not a preference format; rl needs preference, kto or one of axolotl's layouts ({string.Join(", ", ConfigSchema.PairedPreferenceDatasetTypes.Concat(ConfigSchema.UnpairedPreferenceDatasetTypes).Distinct())})");
        }
        return t switch
        {
            "alpaca" or "alpaca_chat" or "alpaca:chat" => RowFormatKind.Alpaca,
            "sharegpt" or "sharegpt:chat" => RowFormatKind.ShareGpt,
            "chat_template" or "messages" or "chat_template.default" => RowFormatKind.ChatTemplate,
            "completion" => RowFormatKind.Completion,
            "pretrain" or "pretraining" or "text" => RowFormatKind.Pretrain,
            "input_output" => RowFormatKind.InputOutput,
            "" => throw new InvalidInputException($"{key}.type: missing; supported: {SupportedTypes}"),
            _ => throw new InvalidInputException($"{key}.type: {type} is not supported; supported: {SupportedTypes}"),
        };
    }

    /// <summary>Text with label spans for the supervised formats.</summary>
    public LabeledText Supervised(JsonNode? node)
    {
        var row = AsObject(node);
        return Kind switch
        {
            RowFormatKind.Alpaca => Alpaca(row),
            RowFormatKind.ShareGpt or RowFormatKind.ChatTemplate => _chat!.Label(Messages(row)),
            RowFormatKind.Completion => Completion(row),
            RowFormatKind.InputOutput => InputOutput(row),
            _ => throw new InvalidOperationException($"{Kind} rows are not supervised rows"),
        };
    }

    /// <summary>The raw document of a pretraining row.</summary>
    public string PretrainText(JsonNode? node) => RequireString(AsObject(node), _dataset.Field ?? "text", "pretrain rows need a text field");

    private LabeledText Alpaca(JsonObject row)
    {
        const string needs = "alpaca rows need instruction and output, optionally input and system";
        string instruction = RequireString(row, _dataset.FieldInstruction ?? "instruction", needs);
        string input = OptionalString(row, _dataset.FieldInput ?? "input") ?? "";
        string output = RequireString(row, _dataset.FieldOutput ?? "output", needs);
        string? system = OptionalString(row, _dataset.FieldSystem ?? "system");
        string preamble = system is { Length: > 0 } ? system + "\n\n" : input.Length > 0 ? AlpacaPreamble : AlpacaPreambleNoInput;
        string prompt = preamble + (input.Length > 0
            ? $"### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
            : $"### Instruction:\n{instruction}\n\n### Response:\n");
        string text = prompt + output;
        var spans = new List<(int, int)> { (_trainOnInputs ? 0 : prompt.Length, text.Length) };
        return new LabeledText(text, spans, AddSpecialTokens: true, AppendEos: true, TrainEos: true);
    }

    private LabeledText Completion(JsonObject row)
    {
        string text = RequireString(row, _dataset.Field ?? "text", "completion rows need a text field");
        return new LabeledText(text, [(0, text.Length)], AddSpecialTokens: true, AppendEos: true, TrainEos: true);
    }

    /// <summary>axolotl's template-free format: the segments' texts joined as-is (no BOS/EOS added), labels where label is true.</summary>
    private LabeledText InputOutput(JsonObject row)
    {
        if (row["segments"] is not JsonArray segments)
            throw new RowException(row.ContainsKey("segments")
                ? $"field \"segments\" is {DatasetSources.Describe(row["segments"])}; expected a list of {{\"text\", \"label\"}}"
                : $"missing field \"segments\" (input_output rows need segments: [{{\"text\": ..., \"label\": true|false}}]); found keys: {Keys(row)}");
        var text = new System.Text.StringBuilder();
        var spans = new List<(int, int)>();
        for (int i = 0; i < segments.Count; i++)
        {
            if (segments[i] is not JsonObject segment) throw new RowException($"segments[{i}] is {DatasetSources.Describe(segments[i])}; expected {{\"text\", \"label\"}}");
            string piece = RequireString(segment, "text", $"segments[{i}] needs text");
            bool label = segment["label"] switch
            {
                null => true,
                JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
                var other => throw new RowException($"segments[{i}].label is {DatasetSources.Describe(other)}; expected true or false"),
            };
            if (label || _trainOnInputs) spans.Add((text.Length, text.Length + piece.Length));
            text.Append(piece);
        }
        return new LabeledText(text.ToString(), spans, AddSpecialTokens: false, AppendEos: false, TrainEos: false);
    }

    /// <summary>The conversation of a row as template messages (role mapped, content a string, other properties passed through).</summary>
    private List<IReadOnlyDictionary<string, object?>> Messages(JsonObject row)
    {
        string field = _dataset.FieldMessages ?? (Kind == RowFormatKind.ShareGpt ? "conversations" : "messages");
        if (_dataset.FieldMessages == null && !row.ContainsKey(field))
            field = row.ContainsKey("conversations") ? "conversations" : row.ContainsKey("messages") ? "messages" : field;
        if (row[field] is not JsonArray list)
            throw new RowException(row.ContainsKey(field)
                ? $"field \"{field}\" is {DatasetSources.Describe(row[field])}; expected a list of messages"
                : $"missing field \"{field}\" (chat rows need a list of messages; set field_messages to the field holding it); found keys: {Keys(row)}");
        var messages = ToMessages(list, field);
        // axolotl's drop_system_message: a leading system turn is left out of the conversation.
        if (_dataset.DropSystemMessage && (string?)messages[0]["role"] == "system") messages.RemoveAt(0);
        if (messages.Count == 0) throw new RowException($"field \"{field}\" holds only a system message, which drop_system_message removes; expected at least one more message");
        return messages;
    }

    internal List<IReadOnlyDictionary<string, object?>> ToMessages(JsonArray list, string field)
    {
        string roleKey = _dataset.MessagePropertyMappings.GetValueOrDefault("role") ?? "role";
        string contentKey = _dataset.MessagePropertyMappings.GetValueOrDefault("content") ?? "content";
        var messages = new List<IReadOnlyDictionary<string, object?>>(list.Count);
        for (int i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonObject m) throw new RowException($"{field}[{i}] is {DatasetSources.Describe(list[i])}; expected a message object");
            // ShareGPT rows use from/value; accept them without a mapping, as axolotl's sharegpt type does.
            string rk = m.ContainsKey(roleKey) || !m.ContainsKey("from") ? roleKey : "from";
            string ck = m.ContainsKey(contentKey) || !m.ContainsKey("value") ? contentKey : "value";
            string source = RequireString(m, rk, $"{field}[{i}] needs a role", $"{field}[{i}].");
            var message = new Dictionary<string, object?>(StringComparer.Ordinal)
            {
                ["role"] = MapRole(source, $"{field}[{i}]"),
                ["content"] = ContentText(m[ck], $"{field}[{i}].{ck}", m.ContainsKey(ck), m["tool_calls"] is JsonArray { Count: > 0 }),
            };
            foreach (var (k, v) in m)
                if (k != rk && k != ck && v != null && !message.ContainsKey(k)) message[k] = JsonSerializer.SerializeToElement(v);
            messages.Add(message);
        }
        if (messages.Count == 0) throw new RowException($"field \"{field}\" is an empty list; expected at least one message");
        return messages;
    }

    private string MapRole(string source, string where)
    {
        foreach (var (target, sources) in _dataset.Roles)
            if (sources.Contains(source, StringComparer.Ordinal)) return target;
        foreach (var (target, sources) in DefaultRoles)
            if (sources.Contains(source, StringComparer.OrdinalIgnoreCase)) return target;
        // An unknown speaker would be rendered by the template as whatever it does with strange roles (often nothing): refuse it.
        var known = _dataset.Roles.SelectMany(r => r.Value).Concat(DefaultRoles.SelectMany(r => r.Value)).Distinct();
        throw new RowException($"{where} role \"{DatasetSources.Shorten(source, 40)}\" is not a known role; known: {string.Join(", ", known)} (map others with roles:, e.g. roles: {{user: [{DatasetSources.Shorten(source, 40)}]}})");
    }

    /// <summary>
    /// Content as text: a string, or OpenAI content parts whose "text" entries are joined. null only beside tool_calls
    /// (an assistant turn that only calls tools, as OpenAI writes it); anywhere else it is a lost message.
    /// </summary>
    private static string ContentText(JsonNode? content, string where, bool present, bool toolCalls = false) => content switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonArray parts => string.Concat(parts.Select((p, i) => p is JsonObject o && o["text"] is JsonValue t && t.GetValueKind() == JsonValueKind.String
            ? t.GetValue<string>()
            : throw new RowException($"{where}[{i}] is {DatasetSources.Describe(p)}; expected a {{\"type\": \"text\", \"text\": ...}} part"))),
        null when !present => throw new RowException($"{where}: missing; expected the message text"),
        null when toolCalls => "",
        null => throw new RowException($"{where} is null; expected the message text (a string; null only in a message with tool_calls)"),
        _ => throw new RowException($"{where} is {DatasetSources.Describe(content)}; expected a string"),
    };

    /// <summary>A preference row: prompt (string or messages) + chosen/rejected (strings or message lists).</summary>
    public PreferenceTexts Preference(JsonNode? node)
    {
        var row = AsObject(node);
        string chosenField = _dataset.FieldChosen ?? "chosen", rejectedField = _dataset.FieldRejected ?? "rejected";
        if (_layout?.Paired(row) is { } texts)
            return texts.Chosen != texts.Rejected ? texts
                : throw new RowException($"\"{chosenField}\" and \"{rejectedField}\" are the same answer (\"{DatasetSources.Shorten(texts.Chosen, 60)}\"); a preference pair needs two different answers");
        const string needs = "preference rows need chosen and rejected (strings with a prompt, or message lists)";
        if (!row.ContainsKey(chosenField)) throw new RowException($"missing field \"{chosenField}\" ({needs}); found keys: {Keys(row)}");
        if (!row.ContainsKey(rejectedField)) throw new RowException($"missing field \"{rejectedField}\" ({needs}); found keys: {Keys(row)}");
        var (prompt, promptField) = PromptMessages(row, chosenField, needs);
        var chosen = Completion(row[chosenField], chosenField, prompt);
        var rejected = Completion(row[rejectedField], rejectedField, prompt);
        if (chosen.Prompt.Count != rejected.Prompt.Count)
            throw new RowException($"\"{chosenField}\" and \"{rejectedField}\" share {chosen.Prompt.Count} vs {rejected.Prompt.Count} prompt messages; expected the same conversation up to the last answer");
        if (chosen.Answer == rejected.Answer)
            throw new RowException($"\"{chosenField}\" and \"{rejectedField}\" are the same answer (\"{DatasetSources.Shorten(chosen.Answer, 60)}\"); a preference pair needs two different answers");
        var promptMessages = chosen.Prompt;
        if (promptMessages.Count == 0) throw new RowException($"no prompt: \"{promptField}\" is missing and \"{chosenField}\" holds only the answer");
        var (promptText, addsSpecialTokens) = RenderPrompt(promptMessages);
        return new PreferenceTexts(promptText, CompletionText(promptMessages, promptText, chosen.Answer),
            CompletionText(promptMessages, promptText, rejected.Answer), addsSpecialTokens);
    }

    /// <summary>
    /// A KTO row: prompt + completion + label (true = desirable), as TRL's KTOTrainer reads them. A paired row
    /// (chosen/rejected) is unpaired into a desirable and an undesirable example, as TRL's unpair_preference_dataset does.
    /// </summary>
    public IReadOnlyList<UnpairedTexts> Unpaired(JsonNode? node)
    {
        var row = AsObject(node);
        const string needs = "KTO rows need prompt, completion and label (true = desirable), or chosen and rejected";
        if (_layout != null) return [_layout.Unpaired(row, Desirable(row, needs))];
        string chosenField = _dataset.FieldChosen ?? "chosen";
        if (row.ContainsKey(chosenField) && !row.ContainsKey("completion"))
        {
            var pair = Preference(row);
            return [new(pair.Prompt, pair.Chosen, true, pair.PromptAddsSpecialTokens), new(pair.Prompt, pair.Rejected, false, pair.PromptAddsSpecialTokens)];
        }
        if (!row.ContainsKey("completion")) throw new RowException($"missing field \"completion\" ({needs}); found keys: {Keys(row)}");
        bool desirable = Desirable(row, needs);
        var (prompt, promptField) = PromptMessages(row, "completion", needs);
        var completion = Completion(row["completion"], "completion", prompt);
        if (completion.Prompt.Count == 0) throw new RowException($"no prompt: \"{promptField}\" is missing and \"completion\" holds only the answer");
        var (promptText, addsSpecialTokens) = RenderPrompt(completion.Prompt);
        return [new(promptText, CompletionText(completion.Prompt, promptText, completion.Answer), desirable, addsSpecialTokens)];
    }

    private static bool Desirable(JsonObject row, string needs) => row["label"] switch
    {
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.ToJsonString() is "0" or "1" => v.ToJsonString() == "1",
        null when !row.ContainsKey("label") => throw new RowException($"missing field \"label\" ({needs}); found keys: {Keys(row)}"),
        var other => throw new RowException($"field \"label\" is {DatasetSources.Describe(other)}; expected true (desirable) or false (undesirable)"),
    };

    /// <summary>
    /// A GRPO prompt row, as TRL reads one: "prompt" is plain text (used as is) or a list of messages (rendered by the chat
    /// template with the assistant turn opened); a "system" field is prepended as a system message.
    /// </summary>
    public (string Text, bool AddsSpecialTokens) Prompt(JsonNode? node)
    {
        var row = AsObject(node);
        const string needs = "prompt rows need a prompt (a string or a list of messages)";
        var (messages, field) = PromptMessages(row, "", needs);
        if (messages.Count == 0) throw new RowException($"field \"{field}\" is empty; {needs}");
        bool conversational = row[field] is JsonArray || messages.Count > 1;
        if (conversational && _chat == null)
            throw new RowException($"field \"{field}\" is a conversation but no chat template is set; expected chat_template (or a tokenizer with one), or a plain-text prompt");
        // TRL tokenizes GRPO prompts with add_special_tokens=False: the template (or the text itself) carries any BOS.
        return _chat != null && conversational ? (_chat.Render(messages, addGenerationPrompt: true), false) : ((string)messages[^1]["content"]!, false);
    }

    /// <summary>The system message and the prompt field (a string or messages; may be absent when the answer field is a conversation).</summary>
    private (List<IReadOnlyDictionary<string, object?>> Messages, string Field) PromptMessages(JsonObject row, string answerField, string needs)
    {
        string? system = OptionalString(row, _dataset.FieldSystem ?? "system");
        var prompt = new List<IReadOnlyDictionary<string, object?>>();
        if (system is { Length: > 0 }) prompt.Add(Message("system", system));
        string promptField = _dataset.FieldInstruction ?? (row.ContainsKey("prompt") ? "prompt" : row.ContainsKey("question") ? "question" : row.ContainsKey("instruction") ? "instruction" : "prompt");
        switch (row[promptField])
        {
            case JsonArray list: prompt.AddRange(ToMessages(list, promptField)); break;
            case JsonValue v when v.GetValueKind() == JsonValueKind.String: prompt.Add(Message("user", v.GetValue<string>())); break;
            case null when row[answerField] is JsonArray: break;
            case null: throw new RowException($"missing field \"{promptField}\" ({needs}); found keys: {Keys(row)}");
            case var other: throw new RowException($"field \"{promptField}\" is {DatasetSources.Describe(other)}; expected a string or a list of messages");
        }
        return (prompt, promptField);
    }

    /// <summary>With a chat template: the rendered conversation up to the assistant's turn; without: the plain prompt text, as TRL does for non-conversational rows.</summary>
    private (string Text, bool AddsSpecialTokens) RenderPrompt(IReadOnlyList<IReadOnlyDictionary<string, object?>> messages) =>
        _chat == null ? (string.Concat(messages.Select(m => (string)m["content"]!)), true) : (_chat.Render(messages, addGenerationPrompt: true), false);

    private string CompletionText(IReadOnlyList<IReadOnlyDictionary<string, object?>> messages, string promptText, string answer) =>
        _chat == null ? answer : _chat.CompletionText(messages, promptText, answer);

    private (List<IReadOnlyDictionary<string, object?>> Prompt, string Answer) Completion(JsonNode? value, string field,
        List<IReadOnlyDictionary<string, object?>> prompt)
    {
        switch (value)
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                return (prompt, v.GetValue<string>());
            case JsonArray list:
                var messages = ToMessages(list, field);
                if ((string?)messages[^1]["role"] != "assistant")
                    throw new RowException($"\"{field}\" ends with a {messages[^1]["role"]} message; expected the assistant's answer last");
                var all = prompt.Concat(messages.Take(messages.Count - 1)).ToList();
                return (all, (string)messages[^1]["content"]!);
            case JsonObject o when o.ContainsKey("content"):
                return (prompt, ContentText(o["content"], field + ".content", true));
            default:
                throw new RowException($"field \"{field}\" is {DatasetSources.Describe(value)}; expected a string or a list of messages");
        }
    }

    private static Dictionary<string, object?> Message(string role, string content) => new() { ["role"] = role, ["content"] = content };

    private static JsonObject AsObject(JsonNode? node) =>
        node as JsonObject ?? throw new RowException($"row is {DatasetSources.Describe(node)}; expected an object");

    private static string RequireString(JsonObject row, string field, string needs, string prefix = "")
    {
        var value = row[field];
        if (value is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        if (!row.ContainsKey(field))
            throw new RowException($"missing field \"{prefix}{field}\" ({needs}); found keys: {Keys(row)}");
        // A number or null where text belongs is a broken export (a column of the wrong type, a lost value), not text to train on.
        throw new RowException($"field \"{prefix}{field}\" is {DatasetSources.Describe(value)}; expected a string");
    }

    private static string? OptionalString(JsonObject row, string field) => row[field] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var other => throw new RowException($"field \"{field}\" is {DatasetSources.Describe(other)}; expected a string"),
    };

    private static string Keys(JsonObject row) => row.Count == 0 ? "(none)" : string.Join(", ", row.Select(p => p.Key));
}
