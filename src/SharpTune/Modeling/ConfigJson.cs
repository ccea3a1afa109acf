using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>Typed reads from a config.json object with family defaults and one-line errors naming the file and key.</summary>
public sealed class ConfigJson(JsonObject json, string source)
{
    public JsonObject Json { get; } = json;
    public string Source { get; } = source;

    /// <summary>The key is present with a non-null value.</summary>
    public bool Has(string key) => Json[key] is not null;

    /// <summary>The key is present, possibly as an explicit null (sliding_window: null turns the window off).</summary>
    public bool Contains(string key) => Json.ContainsKey(key);

    public int Int(string key, int fallback) => Json[key] is null ? fallback : Read(key, ParseInt, "an integer");
    public int? IntOrNull(string key) => Json[key] is null ? null : Read(key, ParseInt, "an integer");
    public double Double(string key, double fallback) => Json[key] is null ? fallback : Read(key, ParseDouble, "a number");
    public double? DoubleOrNull(string key) => Json[key] is null ? null : Read(key, ParseDouble, "a number");

    // Through the JSON text so that a number reads the same whether it was parsed from a file (JsonElement) or set in
    // code as an int or a double (presets): GetValue<double>() on an in-memory int throws.
    private static int ParseInt(JsonNode node) => node.GetValueKind() == JsonValueKind.Number
        ? int.Parse(node.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture)
        : throw new FormatException();
    private static double ParseDouble(JsonNode node) => node.GetValueKind() == JsonValueKind.Number
        ? double.Parse(node.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)
        : throw new FormatException();
    public bool Bool(string key, bool fallback) => Json[key] is null ? fallback : Read(key, n => n.GetValue<bool>(), "true or false");
    public string String(string key, string fallback) => Json[key] is null ? fallback : Read(key, n => n.GetValue<string>(), "a string");

    /// <summary>eos_token_id may be a number or a list (Llama 3.1 lists several).</summary>
    public IReadOnlyList<int> IntList(string key)
    {
        return Json[key] switch
        {
            null => [],
            JsonArray array => array.Select((n, i) => n is null ? throw Bad(key, "a list of integers") : ReadNode(n, key, ParseInt, "a list of integers")).ToArray(),
            JsonNode node => [ReadNode(node, key, ParseInt, "an integer or a list of integers")],
        };
    }

    /// <summary>
    /// layer_types (newer transformers write it for Gemma 3, Qwen3, ...): per layer "sliding_attention" (true) or
    /// "full_attention" (false); null when absent.
    /// </summary>
    public IReadOnlyList<bool>? SlidingLayerTypes(int layers)
    {
        if (Json["layer_types"] is null) return null;
        if (Json["layer_types"] is not JsonArray list || list.Count != layers)
            throw Bad("layer_types", $"a list of {layers} entries (one per layer), each \"sliding_attention\" or \"full_attention\"");
        return list.Select(n => (n as JsonValue)?.GetValueKind() == JsonValueKind.String ? n!.GetValue<string>() : null).Select(t => t switch
        {
            "sliding_attention" => true,
            "full_attention" => false,
            _ => throw Bad("layer_types", "entries \"sliding_attention\" or \"full_attention\""),
        }).ToArray();
    }

    /// <summary>A list of integers (mlp_only_layers); empty when absent or null.</summary>
    public IReadOnlyList<int> Ints(string key) => Json[key] switch
    {
        null => [],
        JsonArray array => array.Select(n => n is null ? throw Bad(key, "a list of integers") : ReadNode(n, key, ParseInt, "a list of integers")).ToArray(),
        _ => throw Bad(key, "a list of integers"),
    };

    public RopeScaling? RopeScaling(int maxPositionEmbeddings)
    {
        if (Json["rope_scaling"] is not JsonObject rope) return null;
        var scoped = new ConfigJson(rope, Source + " rope_scaling");
        var type = scoped.Has("rope_type") ? scoped.String("rope_type", "default") : scoped.String("type", "default");
        if (type == "su") type = "longrope";
        string[] supported = ["default", "linear", "dynamic", "llama3", "yarn", "longrope"];
        if (!supported.Contains(type))
            throw new InvalidInputException($"{Source}: rope_scaling type '{type}' is not supported; supported: {string.Join(", ", supported)}");
        double[]? Factors(string key) => rope[key] is JsonArray a
            ? a.Select(n => n is null ? throw new InvalidInputException($"{Source}: rope_scaling {key} must be a list of numbers") : scoped.ReadNode(n, key, ParseDouble, "a list of numbers")).ToArray()
            : null;
        return new RopeScaling(
            type,
            Factor: scoped.Double("factor", 1.0),
            LowFreqFactor: scoped.Double("low_freq_factor", 1.0),
            HighFreqFactor: scoped.Double("high_freq_factor", 4.0),
            OriginalMaxPositionEmbeddings: scoped.IntOrNull("original_max_position_embeddings") ?? IntOrNull("original_max_position_embeddings"),
            AttentionFactor: scoped.DoubleOrNull("attention_factor"),
            BetaFast: scoped.Double("beta_fast", 32),
            BetaSlow: scoped.Double("beta_slow", 1),
            ShortFactor: Factors("short_factor"),
            LongFactor: Factors("long_factor"));
    }

    private T Read<T>(string key, Func<JsonNode, T> read, string expected) => ReadNode(Json[key]!, key, read, expected);

    private T ReadNode<T>(JsonNode node, string key, Func<JsonNode, T> read, string expected)
    {
        try
        {
            return read(node);
        }
        catch (Exception e) when (e is InvalidOperationException or FormatException or OverflowException or JsonException)
        {
            throw Bad(key, expected);
        }
    }

    private InvalidInputException Bad(string key, string expected) =>
        new($"{Source}: {key}: {Json[key]?.ToJsonString()} is invalid; expected {expected}");
}
