using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Unicode;

namespace SharpTune.Config;

/// <summary>
/// JSON text refused by <see cref="StrictJson"/>. <see cref="Offset"/> is the byte offset (0-based) in the parsed text for
/// invalid UTF-8 and syntax errors; the message then reads "… at byte N …" through the caller's position wording.
/// </summary>
public sealed class StrictJsonException(string message, long? offset) : Exception(message)
{
    public long? Offset { get; } = offset;
}

/// <summary>
/// The one JSON reader for untrusted text (dataset rows, HTTP request bodies). Stricter than System.Text.Json's defaults:
/// the bytes must be valid UTF-8 (never silently replaced by U+FFFD), an object may not repeat a key, and a string may
/// not hold a lone UTF-16 surrogate escape (\ud800 without its pair), because each of those means the text is not what
/// its writer meant, and the lenient readers either guess or fail later with an exception naming no row.
/// </summary>
public static class StrictJson
{
    /// <summary>Nesting deeper than this is refused (System.Text.Json's own default).</summary>
    public const int MaxDepth = 64;

    /// <summary>
    /// One JSON value from UTF-8 bytes. <paramref name="position"/> words a byte offset of the text for messages
    /// (default "byte N"); callers that know more (the line, the file offset) say so.
    /// </summary>
    public static JsonNode? Parse(ReadOnlyMemory<byte> utf8, Func<long, string>? position = null)
    {
        position ??= offset => $"byte {offset}";
        if (FirstInvalidUtf8(utf8.Span) is { } bad)
            throw new StrictJsonException($"invalid UTF-8 at {position(bad.Offset)}: {bad.Problem}; the text must be UTF-8", bad.Offset);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8, new JsonDocumentOptions { MaxDepth = MaxDepth });
        }
        catch (JsonException e)
        {
            long offset = e.BytePositionInLine is { } column && e.LineNumber is { } line ? OffsetOf(utf8.Span, line, column) : 0;
            throw new StrictJsonException($"not valid JSON at {position(offset)} ({Reason(e)})", offset);
        }
        using (document) return ToNode(document.RootElement, "");
    }

    /// <summary>
    /// A parsed element as a node that owns its values (the element's document may be disposed after), refusing repeated
    /// keys and lone surrogates; <paramref name="path"/> names it in messages.
    /// </summary>
    public static JsonNode? ToNode(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var obj = new JsonObject();
                foreach (var property in element.EnumerateObject())
                {
                    string name;
                    try { name = Text(property.Name, path, isKey: true); }
                    catch (InvalidOperationException) { throw LoneSurrogate($"a key of {Where(path)}"); }
                    if (obj.ContainsKey(name))
                        throw new StrictJsonException($"duplicate key \"{Shorten(name, 60)}\" in {Where(path)}; each key may appear once per object", null);
                    obj.Add(name, ToNode(property.Value, Child(path, name)));
                }
                return obj;
            case JsonValueKind.Array:
                var array = new JsonArray();
                int i = 0;
                foreach (var item in element.EnumerateArray()) array.Add(ToNode(item, $"{path}[{i++}]"));
                return array;
            case JsonValueKind.String:
                string value;
                try { value = element.GetString()!; }
                catch (InvalidOperationException) { throw LoneSurrogate(path); }
                return JsonValue.Create(Text(value, path, isKey: false));
            case JsonValueKind.Null:
                return null;
            case JsonValueKind.True:
                return JsonValue.Create(true);
            case JsonValueKind.False:
                return JsonValue.Create(false);
            default:
                // A number keeps its exact text and reads as any numeric type; cloned, since the document goes back to its pool.
                return JsonValue.Create(element.Clone());
        }
    }

    /// <summary>The first byte that does not belong to a well-formed UTF-8 sequence, and why.</summary>
    public static (long Offset, string Problem)? FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes)) return null;
        long offset = 0;
        while (!bytes.IsEmpty)
        {
            var status = System.Text.Rune.DecodeFromUtf8(bytes, out _, out int consumed);
            if (status != System.Buffers.OperationStatus.Done)
            {
                byte lead = bytes[0];
                string problem = status == System.Buffers.OperationStatus.NeedMoreData ? $"the text ends inside the character starting with 0x{lead:X2}"
                    : lead is >= 0x80 and < 0xC0 ? $"0x{lead:X2} continues no character"
                    : lead is >= 0xC2 and <= 0xF4 ? $"the character starting with 0x{lead:X2} is incomplete or malformed"
                    : $"0x{lead:X2} never occurs in UTF-8";
                return (offset, problem);
            }
            bytes = bytes[consumed..];
            offset += consumed;
        }
        return null;
    }

    private static string Text(string value, string path, bool isKey)
    {
        for (int i = 0; i < value.Length; i++)
        {
            if (char.IsHighSurrogate(value[i]) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1])) { i++; continue; }
            if (char.IsSurrogate(value[i])) throw LoneSurrogate(isKey ? $"a key of {Where(path)}" : path);
        }
        return value;
    }

    private static StrictJsonException LoneSurrogate(string path) =>
        new($"lone surrogate escape in the string at {Where(path)}; a \\uD800-\\uDFFF escape must be a high-low pair", null);

    private static string Child(string path, string name) =>
        name.Length > 0 && name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_') ? (path.Length == 0 ? name : $"{path}.{name}") : $"{path}[\"{Shorten(name, 40)}\"]";

    private static string Shorten(string text, int max) => (text.Length <= max ? text : text[..max] + "…").Replace("\n", "\\n");

    private static string Where(string path) => path.Length == 0 ? "the top-level object" : path;

    /// <summary>System.Text.Json's reason without its "LineNumber: … | BytePositionInLine: …" tail (the caller says where).</summary>
    internal static string Reason(JsonException e)
    {
        string message = e.Message;
        int tail = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (tail > 0) message = message[..tail];
        return message.TrimEnd().TrimEnd('.');
    }

    /// <summary>The byte offset of (0-based line, byte in line) in the text.</summary>
    private static long OffsetOf(ReadOnlySpan<byte> text, long line, long column)
    {
        long offset = 0;
        for (long l = 0; l < line; l++)
        {
            int newline = text[(int)offset..].IndexOf((byte)'\n');
            if (newline < 0) break;
            offset += newline + 1;
        }
        return Math.Min(offset + column, text.Length);
    }
}
