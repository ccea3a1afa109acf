using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Config;

namespace SharpTune.Data;

/// <summary>
/// axolotl's named preference layouts (its prompt_strategies/dpo, kto and orpo modules), each giving the prompt, chosen,
/// rejected (or completion) strings axolotl gives: chatml.* and llama3.* write fixed ChatML / Llama-3 text whatever the chat
/// template; chat_template.* render with the chat template. Which names exist depends on rl, as axolotl looks them up in the
/// module of the trainer (dpo for dpo/ipo/simpo, kto, orpo).
/// </summary>
public sealed class PreferenceLayout
{
    private readonly string _name;
    private readonly Style _style;
    private readonly DatasetConfig _dataset;
    private readonly ChatLabeler? _chat;

    private enum Style { ChatMl, Llama3, ChatTemplate }

    private PreferenceLayout(string name, DatasetConfig dataset, ChatLabeler? chat)
    {
        _name = name;
        _dataset = dataset;
        _chat = chat;
        _style = name.StartsWith("chatml.") ? Style.ChatMl : name.StartsWith("llama3.") ? Style.Llama3 : Style.ChatTemplate;
    }

    /// <summary>Whether the layout renders with the chat template (chat_template.*), which must then resolve.</summary>
    public static bool NeedsTemplate(string? type) => (type ?? "").StartsWith("chat_template.", StringComparison.Ordinal);

    /// <summary>The layout a dataset's type names under rl, or null for SharpTune's own formats (preference, kto).</summary>
    public static PreferenceLayout? For(DatasetConfig dataset, RlType rl, ChatLabeler? chat, string key)
    {
        string type = (dataset.Type ?? "").Trim();
        // chat_template.default under kto is SharpTune's unpairing of paired rows (axolotl's kto module has no chat_template layout).
        if (type is "preference" or "kto" or "dpo" or "orpo" or "simpo" or "chat_template" || (rl == RlType.Kto && type == "chat_template.default")) return null;
        if (!ConfigSchema.PreferenceTypesFor(rl).Contains(type))
            throw new InvalidInputException($"{key}.type: {type} is not a layout axolotl defines for rl: {ConfigNames.ToSnake(rl.ToString())}; " +
                                            $"expected one of {string.Join(", ", ConfigSchema.PreferenceTypesFor(rl))}");
        if (NeedsTemplate(type) && chat == null)
            throw new InvalidInputException($"{key}.type: {type} renders with the chat template, but none is set and the tokenizer has none; set chat_template");
        return new PreferenceLayout(type, dataset, chat);
    }

    /// <summary>A paired row (dpo, simpo, orpo).</summary>
    public PreferenceTexts Paired(JsonObject row)
    {
        string function = _name[(_name.IndexOf('.') + 1)..];
        if (_style == Style.ChatTemplate)
            return function switch
            {
                "default" => TemplateDefault(row),
                "argilla_chat" => TemplateArgillaChat(row),
                _ => OrpoArgilla(row),
            };
        var (system, user) = function switch
        {
            "argilla" or "default" => (System(row), Text(row, First(row, "prompt", "input", "question") ?? "instruction")),
            "argilla_chat" => (null, MessageContent(row, "chosen", 0)),
            "icr" => (System(row), Text(row, "input")),
            "intel" => (System(row), Text(row, "question")),
            _ => (System(row), Text(row, "prompt")), // prompt_pairs, ultra
        };
        var (chosen, rejected) = function switch
        {
            "argilla" or "default" => (Text(row, row.ContainsKey("chosen") ? "chosen" : "chosen_response"), Text(row, row.ContainsKey("rejected") ? "rejected" : "rejected_response")),
            "argilla_chat" or "ultra" => (MessageContent(row, "chosen", 1), MessageContent(row, "rejected", 1)),
            _ => (Text(row, "chosen"), Text(row, "rejected")),
        };
        return new PreferenceTexts(Prompt(system, [("user", user)]), chosen + EndOfTurn, rejected + EndOfTurn, PromptAddsSpecialTokens: true);
    }

    /// <summary>An unpaired row (kto): the completion ends with the end-of-turn text; the label is the row's.</summary>
    public UnpairedTexts Unpaired(JsonObject row, bool desirable)
    {
        string function = _name[(_name.IndexOf('.') + 1)..];
        string prompt, completion;
        switch (function)
        {
            case "argilla_chat" when _style == Style.Llama3:
            {
                // llama3.argilla_chat keeps the whole history, each turn under its own role.
                var turns = Messages(row, "completion");
                if (turns.Count < 2) throw new RowException($"field \"completion\" holds {turns.Count} message(s); llama3.argilla_chat needs the conversation and the answer last");
                prompt = Prompt(null, turns.Take(turns.Count - 1).ToList());
                completion = turns[^1].Content;
                break;
            }
            case "argilla_chat":
                prompt = Prompt(null, [("user", MessageContent(row, "completion", 0))]);
                completion = MessageContent(row, "completion", 1);
                break;
            default:
                string field = function switch { "argilla" => "instruction", "intel" => "question", _ => "prompt" };
                prompt = Prompt(System(row), [("user", Text(row, field))]);
                completion = Text(row, "completion");
                break;
        }
        return new UnpairedTexts(prompt, completion + EndOfTurn, desirable, PromptAddsSpecialTokens: true);
    }

    private string EndOfTurn => _style == Style.ChatMl ? "<|im_end|>" : "<|eot_id|>";

    /// <summary>The fixed ChatML / Llama-3 text of a conversation up to the opened assistant turn.</summary>
    private string Prompt(string? system, IReadOnlyList<(string Role, string Content)> turns)
    {
        var text = new System.Text.StringBuilder();
        if (!string.IsNullOrEmpty(system)) text.Append(Turn("system", system));
        foreach (var (role, content) in turns) text.Append(Turn(role, content));
        text.Append(_style == Style.ChatMl ? "<|im_start|>assistant\n" : "<|start_header_id|>assistant<|end_header_id|>\n\n");
        return text.ToString();
    }

    private string Turn(string role, string content) => _style == Style.ChatMl
        ? $"<|im_start|>{role}\n{content}<|im_end|>\n"
        : $"<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>";

    /// <summary>
    /// dpo chat_template.default: the prompt is the rendered conversation with the assistant turn opened; each answer is
    /// rendered after a placeholder user turn and cut from where its text starts, trailing whitespace removed.
    /// </summary>
    private PreferenceTexts TemplateDefault(JsonObject row)
    {
        string field = _dataset.FieldMessages ?? "messages";
        // Rows without the messages field: a prompt field is read as the messages would be (a string is the user's turn), and
        // conversations in chosen/rejected as chat_template.argilla_chat reads them.
        if (_dataset.FieldMessages == null && !row.ContainsKey(field))
        {
            if (row.ContainsKey("prompt")) field = "prompt";
            else if (row[_dataset.FieldChosen ?? "chosen"] is JsonArray) return TemplateArgillaChat(row);
        }
        var messages = row[field] switch
        {
            JsonValue v when v.GetValueKind() == JsonValueKind.String => [Message("user", v.GetValue<string>())],
            JsonArray list => list.Select((m, i) => MappedMessage(m, $"{field}[{i}]")).ToList(),
            null when !row.ContainsKey(field) => throw new RowException($"missing field \"{field}\" (chat_template.default rows need the prompt messages; set field_messages); found keys: {Keys(row)}"),
            var other => throw new RowException($"field \"{field}\" is {DatasetSources.Describe(other)}; expected a list of messages or a string"),
        };
        var chosen = Answer(row, _dataset.FieldChosen ?? "chosen");
        var rejected = Answer(row, _dataset.FieldRejected ?? "rejected");
        return new PreferenceTexts(_chat!.Render(messages, addGenerationPrompt: true), AnswerText(chosen), AnswerText(rejected), PromptAddsSpecialTokens: false);
    }

    /// <summary>dpo chat_template.argilla_chat: chosen and rejected are whole conversations; the prompt is chosen's up to its last message.</summary>
    private PreferenceTexts TemplateArgillaChat(JsonObject row)
    {
        string chosenField = _dataset.FieldChosen ?? "chosen", rejectedField = _dataset.FieldRejected ?? "rejected";
        var chosen = MappedList(row, chosenField);
        var rejected = MappedList(row, rejectedField);
        return new PreferenceTexts(_chat!.Render(chosen.Take(chosen.Count - 1).ToList(), addGenerationPrompt: true),
            AnswerText(chosen[^1]), AnswerText(rejected[^1]), PromptAddsSpecialTokens: false);
    }

    /// <summary>
    /// orpo chat_template.argilla: the prompt is the system field (when set) and the user turns of chosen (each replaced by the
    /// row's prompt field when it has one) with the earlier assistant turns; each answer is the rendered conversation with
    /// it, less the prompt's text.
    /// </summary>
    private PreferenceTexts OrpoArgilla(JsonObject row)
    {
        var chosen = RawMessages(row, "chosen");
        var rejected = RawMessages(row, "rejected");
        if (chosen.Count % 2 != 0) throw new RowException($"field \"chosen\" holds {chosen.Count} messages; chat_template.argilla needs user/assistant pairs");
        var prompt = new List<IReadOnlyDictionary<string, object?>>();
        if (System(row) is { Length: > 0 } system) prompt.Add(Message("system", system));
        string? promptField = row.ContainsKey("prompt") ? Text(row, "prompt") : null;
        for (int turn = 0; turn < chosen.Count / 2; turn++)
        {
            prompt.Add(Message("user", promptField ?? chosen[2 * turn].Content));
            if (turn < chosen.Count / 2 - 1) prompt.Add(Message("assistant", chosen[2 * turn + 1].Content));
        }
        string promptText = _chat!.Render(prompt, addGenerationPrompt: true);
        string Completion(string answer)
        {
            string full = _chat.Render(prompt.Append(Message("assistant", answer)).ToList(), addGenerationPrompt: false);
            return full.Length >= promptText.Length ? full[promptText.Length..] : "";
        }
        return new PreferenceTexts(promptText, Completion(chosen[^1].Content), Completion(rejected[^1].Content), PromptAddsSpecialTokens: false);
    }

    private string AnswerText(IReadOnlyDictionary<string, object?> answer)
    {
        string content = (string)answer["content"]!;
        string rendered = _chat!.Render([Message("user", "[[dummy_message]]"), answer], addGenerationPrompt: false);
        int start = rendered.IndexOf(content, StringComparison.Ordinal);
        if (start < 0) throw new RowException($"the chat template changes the answer \"{DatasetSources.Shorten(content, 60)}\" (it is not found in the rendered turn), so it cannot be cut out as axolotl's chat_template layouts do");
        return rendered[start..].TrimEnd();
    }

    /// <summary>An answer field: a string (the assistant's), one message, or a list whose last message is the answer.</summary>
    private IReadOnlyDictionary<string, object?> Answer(JsonObject row, string field) => row[field] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => Message("assistant", v.GetValue<string>()),
        JsonObject message => MappedMessage(message, field),
        JsonArray { Count: > 0 } list => MappedMessage(list[^1], $"{field}[{list.Count - 1}]"),
        null when !row.ContainsKey(field) => throw new RowException($"missing field \"{field}\" ({_name} rows need it: a string, a message or a list of messages); found keys: {Keys(row)}"),
        var other => throw new RowException($"field \"{field}\" is {DatasetSources.Describe(other)}; expected a string, a message or a non-empty list of messages"),
    };

    private List<IReadOnlyDictionary<string, object?>> MappedList(JsonObject row, string field) => row[field] switch
    {
        JsonArray { Count: > 0 } list => list.Select((m, i) => MappedMessage(m, $"{field}[{i}]")).ToList(),
        null when !row.ContainsKey(field) => throw new RowException($"missing field \"{field}\" ({_name} rows need it as a list of messages); found keys: {Keys(row)}"),
        var other => throw new RowException($"field \"{field}\" is {DatasetSources.Describe(other)}; expected a non-empty list of messages"),
    };

    /// <summary>A message's role (through roles:, or user/assistant/system/tool as they are) and content, under message_property_mappings.</summary>
    private IReadOnlyDictionary<string, object?> MappedMessage(JsonNode? node, string where)
    {
        if (node is not JsonObject m) throw new RowException($"{where} is {DatasetSources.Describe(node)}; expected a message object");
        string roleKey = _dataset.MessagePropertyMappings.GetValueOrDefault("role") ?? "role";
        string contentKey = _dataset.MessagePropertyMappings.GetValueOrDefault("content") ?? "content";
        string source = Text(m, roleKey, where + ".");
        string? role = _dataset.Roles.Count > 0
            ? _dataset.Roles.FirstOrDefault(r => r.Value.Contains(source, StringComparer.Ordinal)).Key
            : source is "user" or "assistant" or "system" or "tool" ? source : null;
        if (role == null)
            throw new RowException($"{where}.{roleKey} \"{source}\" is not a known role; expected " +
                                   (_dataset.Roles.Count > 0 ? $"one mapped by roles: ({string.Join(", ", _dataset.Roles.SelectMany(r => r.Value))})" : "user, assistant, system or tool (or map it with roles:)"));
        return Message(role, Text(m, contentKey, where + "."));
    }

    private static List<(string Role, string Content)> Messages(JsonObject row, string field) => row[field] switch
    {
        JsonArray list => list.Select((m, i) => m is JsonObject o
            ? (Text(o, "role", $"{field}[{i}]."), Text(o, "content", $"{field}[{i}]."))
            : throw new RowException($"{field}[{i}] is {DatasetSources.Describe(m)}; expected a message object")).ToList(),
        null when !row.ContainsKey(field) => throw new RowException($"missing field \"{field}\" (a list of messages); found keys: {Keys(row)}"),
        var other => throw new RowException($"field \"{field}\" is {DatasetSources.Describe(other)}; expected a list of messages"),
    };

    private static List<(string Role, string Content)> RawMessages(JsonObject row, string field)
    {
        var messages = Messages(row, field);
        if (messages.Count == 0) throw new RowException($"field \"{field}\" is an empty list; expected the conversation with the answer last");
        return messages;
    }

    /// <summary>The content of message <paramref name="index"/> of a conversation field (argilla's chosen[0] = the question, chosen[1] = the answer).</summary>
    private static string MessageContent(JsonObject row, string field, int index)
    {
        var messages = Messages(row, field);
        if (messages.Count <= index) throw new RowException($"field \"{field}\" holds {messages.Count} message(s); expected the question first and the answer second");
        return messages[index].Content;
    }

    private static string? System(JsonObject row) => row["system"] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var other => throw new RowException($"field \"system\" is {DatasetSources.Describe(other)}; expected a string"),
    };

    private static string? First(JsonObject row, params string[] fields) => fields.FirstOrDefault(row.ContainsKey);

    private static string Text(JsonObject row, string field, string prefix = "") => row[field] switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        null when !row.ContainsKey(field) => throw new RowException($"missing field \"{prefix}{field}\"; found keys: {Keys(row)}"),
        var other => throw new RowException($"field \"{prefix}{field}\" is {DatasetSources.Describe(other)}; expected a string"),
    };

    private static Dictionary<string, object?> Message(string role, string content) => new() { ["role"] = role, ["content"] = content };

    private static string Keys(JsonObject row) => row.Count == 0 ? "(none)" : string.Join(", ", row.Select(p => p.Key));
}
