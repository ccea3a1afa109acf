using System.Text.Json;

namespace SharpTune.Config;

/// <summary>
/// The untyped shape of a config file (YAML or JSON) before the schema gives values their types.
/// Scalars keep their text so that each key parses it by its own type ("2e-4" is a learning rate, not a string).
/// </summary>
internal abstract class ConfigNode
{
    /// <summary>The --set argument this node came from; null when it came from the file.</summary>
    public string? Override { get; init; }
}

internal sealed class ScalarNode : ConfigNode
{
    /// <summary>Null for YAML null/~/empty and JSON null.</summary>
    public string? Text { get; init; }
}

internal sealed class MapNode : ConfigNode
{
    public List<KeyValuePair<string, ConfigNode>> Entries { get; } = [];

    public ConfigNode? Get(string key) => Entries.FirstOrDefault(e => e.Key == key).Value;

    public void Set(string key, ConfigNode value)
    {
        int i = Entries.FindIndex(e => e.Key == key);
        if (i >= 0) Entries[i] = new(key, value);
        else Entries.Add(new(key, value));
    }
}

internal sealed class ListNode : ConfigNode
{
    public List<ConfigNode> Items { get; } = [];
}

internal static class ConfigTree
{
    /// <summary>A node as JSON: scalars that read as numbers or booleans become those, the rest strings.</summary>
    public static System.Text.Json.Nodes.JsonNode? ToJson(ConfigNode node) => node switch
    {
        MapNode map => new System.Text.Json.Nodes.JsonObject(map.Entries.Select(e => KeyValuePair.Create(e.Key, ToJson(e.Value)))),
        ListNode list => new System.Text.Json.Nodes.JsonArray(list.Items.Select(ToJson).ToArray()),
        ScalarNode { Text: null } => null,
        ScalarNode { Text: var t } when t is "true" or "false" => System.Text.Json.Nodes.JsonValue.Create(t == "true"),
        ScalarNode { Text: var t } when double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) => System.Text.Json.Nodes.JsonValue.Create(d),
        ScalarNode scalar => System.Text.Json.Nodes.JsonValue.Create(scalar.Text),
        _ => null,
    };

    public static bool LooksLikeJson(string path, string text)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext == ".json") return true;
        if (ext is ".yaml" or ".yml") return false;
        return text.TrimStart().StartsWith('{');
    }

    /// <summary>Config files are a few KiB; a larger "config" is a data file named by mistake, or an attack.</summary>
    public const int MaxDocumentBytes = 4 << 20;

    /// <summary>Refuses text over <see cref="MaxDocumentBytes"/> before it is parsed.</summary>
    public static void CheckSize(long bytes, string source)
    {
        if (bytes > MaxDocumentBytes)
            throw new InvalidInputException($"{source}: {bytes} bytes; a config is at most {MaxDocumentBytes >> 20} MiB (is this a data file?)");
    }

    /// <summary>Parses YAML text; <paramref name="source"/> names the file in errors.</summary>
    public static ConfigNode? ParseYaml(string text, string source, string? overrideArg = null)
    {
        CheckSize(System.Text.Encoding.UTF8.GetByteCount(text), source);
        return YamlReader.Parse(text, source, overrideArg);
    }

    public static ConfigNode ParseJson(string text, string source)
    {
        CheckSize(System.Text.Encoding.UTF8.GetByteCount(text), source);
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions
            {
                AllowTrailingCommas = true,
                CommentHandling = JsonCommentHandling.Skip,
            });
            return FromJson(doc.RootElement, source);
        }
        catch (JsonException e)
        {
            // JsonException counts lines and columns from 0.
            throw new InvalidInputException(
                $"{source}:{(e.LineNumber ?? 0) + 1}:{(e.BytePositionInLine ?? 0) + 1}: JSON syntax error: {OneLine(e.Message)}");
        }
    }

    private static ConfigNode FromJson(JsonElement e, string source)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                var map = new MapNode();
                foreach (var p in e.EnumerateObject())
                {
                    if (map.Get(p.Name) != null) throw new InvalidInputException($"{source}: key '{p.Name}' appears twice");
                    map.Entries.Add(new(p.Name, FromJson(p.Value, source)));
                }
                return map;
            case JsonValueKind.Array:
                var list = new ListNode();
                foreach (var item in e.EnumerateArray()) list.Items.Add(FromJson(item, source));
                return list;
            case JsonValueKind.String:
                return new ScalarNode { Text = e.GetString() };
            case JsonValueKind.Null:
                return new ScalarNode { Text = null };
            default: // numbers keep their literal text; true/false
                return new ScalarNode { Text = e.GetRawText() };
        }
    }

    /// <summary>How a node reads in an error message.</summary>
    public static string Show(ConfigNode node) => node switch
    {
        ScalarNode { Text: null } => "null",
        ScalarNode { Text: "" } => "''",
        ScalarNode s => s.Text!,
        ListNode => "a list",
        _ => "a mapping",
    };

    public static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
