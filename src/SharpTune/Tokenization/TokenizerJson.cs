using System.IO.Compression;
using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>Reads tokenizer files (plain or .gz) and reports unsupported component types in one line.</summary>
internal static class TokenizerJson
{
    public static JsonDocument? TryLoad(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        if (File.Exists(path)) return Parse(path, File.OpenRead(path));
        if (File.Exists(path + ".gz")) return Parse(path + ".gz", new GZipStream(File.OpenRead(path + ".gz"), CompressionMode.Decompress));
        return null;
    }

    private static JsonDocument Parse(string path, Stream stream)
    {
        using (stream)
        {
            try { return JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 256 }); }
            catch (JsonException e) { throw new InvalidInputException($"{path}: not valid JSON ({e.Message})"); }
        }
    }

    public static string? String(this JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static bool Bool(this JsonElement e, string name, bool fallback) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;

    public static int Int(this JsonElement e, string name, int fallback) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;

    public static JsonElement? Child(this JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public static InvalidInputException Unsupported(string file, string component, string? type, string supported) =>
        new($"{file}: unsupported {component} type '{type ?? "(missing)"}'; supported: {supported}");
}
