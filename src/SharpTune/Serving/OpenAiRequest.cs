using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Data;
using SharpTune.Inference;
using SharpTune.Config;

namespace SharpTune.Serving;

/// <summary>An error the API reports as OpenAI does: HTTP status plus {"error": {"message", "type", "param", "code"}}.</summary>
public sealed class OpenAiException(int status, string message, string type = "invalid_request_error", string? param = null, string? code = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    public JsonObject ToJson() => new()
    {
        ["error"] = new JsonObject { ["message"] = Message, ["type"] = Type, ["param"] = Param, ["code"] = Code },
    };
}

/// <summary>A validated /v1/completions or /v1/chat/completions body.</summary>
public sealed record OpenAiRequest(
    bool IsChat,
    IReadOnlyList<ChatMessage> Messages,
    IReadOnlyList<string> Prompts,
    TextGenerationOptions Options,
    bool MaxTokensGiven,
    bool Stream,
    bool IncludeUsage)
{
    private static readonly HashSet<string> Roles = ["system", "user", "assistant", "developer", "tool"];

    /// <summary>The body's UTF-8 bytes, parsed strictly (<see cref="StrictJson"/>): anything it refuses is a 400 saying where.</summary>
    public static OpenAiRequest Parse(ReadOnlyMemory<byte> body, bool isChat, ServerOptions server, int contextLength)
    {
        JsonObject root;
        try
        {
            root = StrictJson.Parse(body) as JsonObject ?? throw Bad("request body: expected a JSON object", null);
        }
        catch (StrictJsonException e)
        {
            throw Bad($"request body: {e.Message}", null);
        }
        var n = Int(root, "n");
        if (n is not null and not 1) throw Bad($"n: {n} is not supported; this server returns exactly one choice per prompt (n=1)", "n");
        var messages = isChat ? ReadMessages(root) : [];
        var prompts = isChat ? [] : ReadPrompts(root);

        int? maxTokens = Int(root, isChat && root["max_completion_tokens"] is not null ? "max_completion_tokens" : "max_tokens");
        string maxName = isChat && root["max_completion_tokens"] is not null ? "max_completion_tokens" : "max_tokens";
        if (maxTokens is < 1) throw Bad($"{maxName}: {maxTokens} is invalid; expected an integer ≥ 1", maxName);
        if (maxTokens > server.MaxTokensCap) throw Bad($"{maxName}: {maxTokens} is above this server's limit of {server.MaxTokensCap}", maxName);
        int budget = maxTokens ?? (isChat ? Math.Min(server.MaxTokensCap, contextLength) : server.DefaultCompletionTokens);

        double? temperature = Number(root, "temperature");
        if (temperature is < 0 or > 2) throw Bad($"temperature: {temperature} is invalid; expected a number in [0, 2]", "temperature");
        double? topP = Number(root, "top_p");
        if (topP is <= 0 or > 1) throw Bad($"top_p: {topP} is invalid; expected a number in (0, 1]", "top_p");
        int? topK = Int(root, "top_k");
        if (topK is 0 or -1) topK = null;   // vLLM spelling of "off"
        if (topK is < 1) throw Bad($"top_k: {topK} is invalid; expected an integer ≥ 1 (or 0/-1 for off)", "top_k");
        double? minP = Number(root, "min_p");
        if (minP is < 0 or > 1) throw Bad($"min_p: {minP} is invalid; expected a number in [0, 1]", "min_p");
        double repetition = Number(root, "repetition_penalty") ?? 1.0;
        if (repetition <= 0) throw Bad($"repetition_penalty: {repetition} is invalid; expected a number > 0", "repetition_penalty");
        foreach (var key in new[] { "frequency_penalty", "presence_penalty" })
            if (Number(root, key) is { } v && v != 0) throw Bad($"{key}: {v} is not supported; use repetition_penalty", key);
        long? seed = root["seed"] is null ? null : Long(root, "seed");

        var stream = Bool(root, "stream") ?? false;
        bool includeUsage = root["stream_options"] is JsonObject so && so["include_usage"]?.GetValueKind() == JsonValueKind.True;
        var options = new TextGenerationOptions
        {
            Sampling = new GenerationOptions
            {
                MaxNewTokens = budget,
                Temperature = temperature,
                TopP = topP,
                TopK = topK,
                MinP = minP,
                RepetitionPenalty = repetition,
                Seed = seed,
            },
            StopStrings = ReadStop(root),
        };
        return new OpenAiRequest(isChat, messages, prompts, options, maxTokens is not null, stream, includeUsage);
    }

    private static List<ChatMessage> ReadMessages(JsonObject root)
    {
        if (root["messages"] is not JsonArray array || array.Count == 0) throw Bad("messages: required; expected a non-empty list of {role, content}", "messages");
        var list = new List<ChatMessage>();
        for (int i = 0; i < array.Count; i++)
        {
            if (array[i] is not JsonObject m) throw Bad($"messages[{i}]: expected an object with role and content", "messages");
            var role = m["role"]?.GetValueKind() == JsonValueKind.String ? m["role"]!.GetValue<string>() : null;
            if (role is null || !Roles.Contains(role)) throw Bad($"messages[{i}].role: '{role}' is invalid; expected one of {string.Join(", ", Roles)}", "messages");
            if (!m.ContainsKey("content")) throw Bad($"messages[{i}].content: required; expected a string or a list of text parts", "messages");
            list.Add(new ChatMessage(role == "developer" ? "system" : role, Content(m["content"], i)));
        }
        return list;
    }

    /// <summary>content is a string or a list of parts; only text parts are understood.</summary>
    private static string Content(JsonNode? content, int i)
    {
        switch (content)
        {
            case null: throw Bad($"messages[{i}].content: null; expected a string or a list of text parts (tool calls are not supported)", "messages");
            case JsonValue v when v.GetValueKind() == JsonValueKind.String: return v.GetValue<string>();
            case JsonArray parts:
                var text = new System.Text.StringBuilder();
                foreach (var part in parts)
                {
                    if (part is JsonObject p && p["type"]?.ToString() == "text" && p["text"]?.GetValueKind() == JsonValueKind.String) text.Append(p["text"]!.GetValue<string>());
                    else throw Bad($"messages[{i}].content: only text parts ({{\"type\": \"text\", \"text\": ...}}) are supported", "messages");
                }
                return text.ToString();
            default: throw Bad($"messages[{i}].content: expected a string or a list of text parts", "messages");
        }
    }

    private static List<string> ReadPrompts(JsonObject root)
    {
        switch (root["prompt"])
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String: return [v.GetValue<string>()];
            case JsonArray a when a.Count > 0 && a.All(p => p?.GetValueKind() == JsonValueKind.String): return a.Select(p => p!.GetValue<string>()).ToList();
            case null: throw Bad("prompt: required; expected a string or a list of strings", "prompt");
            default: throw Bad("prompt: expected a string or a non-empty list of strings (token-id prompts are not supported)", "prompt");
        }
    }

    private static List<string> ReadStop(JsonObject root)
    {
        switch (root["stop"])
        {
            case null: return [];
            case JsonValue v when v.GetValueKind() == JsonValueKind.String: return [v.GetValue<string>()];
            case JsonArray a when a.Count <= 4 && a.All(s => s?.GetValueKind() == JsonValueKind.String): return a.Select(s => s!.GetValue<string>()).ToList();
            default: throw Bad("stop: expected a string or a list of at most 4 strings", "stop");
        }
    }

    private static double? Number(JsonObject root, string key) => root[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => v.GetValue<double>(),
        _ => throw Bad($"{key}: {root[key]!.ToJsonString()} is not a number", key),
    };

    private static long? Long(JsonObject root, string key) => root[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<long>(out var l) => l,
        JsonValue v when v.GetValueKind() == JsonValueKind.Number && double.TryParse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture, out var d) && d == Math.Floor(d) && Math.Abs(d) < 1e15 => (long)d,
        _ => throw Bad($"{key}: {root[key]!.ToJsonString()} is not an integer", key),
    };

    private static int? Int(JsonObject root, string key)
    {
        var value = Long(root, key);
        if (value is > int.MaxValue or < int.MinValue) throw Bad($"{key}: {value} is out of range", key);
        return (int?)value;
    }

    private static bool? Bool(JsonObject root, string key) => root[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        _ => throw Bad($"{key}: {root[key]!.ToJsonString()} is not true or false", key),
    };

    private static OpenAiException Bad(string message, string? param) => new(400, message, "invalid_request_error", param);
}
