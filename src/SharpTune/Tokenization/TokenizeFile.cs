using System.Text;
using System.Text.Json;
using SharpTune.Files;

namespace SharpTune.Tokenization;

/// <summary>What `sharptune tokenize` does: texts or chat rows in, ids and token strings out as one JSON file.</summary>
public sealed record TokenizeRequest(
    string TokenizerDir,
    string? Text,
    string? InputPath,
    bool Chat,
    bool AddSpecialTokens,
    bool AddGenerationPrompt,
    string OutputPath);

/// <summary>Rows written and tokens produced.</summary>
public sealed record TokenizeSummary(int Rows, long Tokens);

public static class TokenizeFile
{
    /// <summary>
    /// Writes {"input_ids": [[...]], "tokens": [[...]], "offsets": [[[s,e],...]]} (plus "texts" with the rendered
    /// chat for --chat). Chat rows are rendered with the tokenizer's chat template and encoded without adding
    /// special tokens again, as transformers' apply_chat_template(tokenize=True) does.
    /// </summary>
    public static TokenizeSummary Run(TokenizeRequest request)
    {
        if ((request.Text is null) == (request.InputPath is null))
            throw new InvalidInputException("tokenize: give exactly one of --text and --input");
        var tokenizer = HfTokenizer.FromDirectory(request.TokenizerDir);
        var texts = new List<string>();
        if (request.Text is not null)
        {
            texts.Add(request.Chat
                ? tokenizer.ApplyChatTemplate([new Dictionary<string, object?> { ["role"] = "user", ["content"] = request.Text }], request.AddGenerationPrompt)
                : request.Text);
        }
        else
        {
            var path = request.InputPath!;
            if (!File.Exists(path)) throw new InvalidInputException($"{path}: input file not found");
            var lineNumber = 0;
            foreach (var line in File.ReadLines(path))
            {
                lineNumber++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonElement row;
                try { row = JsonDocument.Parse(line).RootElement; }
                catch (JsonException e) { throw new InvalidInputException($"{path}:{lineNumber}: not valid JSON ({e.Message})"); }
                texts.Add(request.Chat ? RenderChatRow(tokenizer, row, path, lineNumber, request.AddGenerationPrompt) : TextOf(row, path, lineNumber));
            }
        }

        var encodings = new EncodingResult[texts.Count];
        var addSpecial = request.AddSpecialTokens && !request.Chat;
        Parallel.For(0, texts.Count, i => encodings[i] = tokenizer.EncodeWithOffsets(texts[i], addSpecial));
        WriteAtomically(request.OutputPath, writer =>
        {
            writer.WriteStartObject();
            writer.WriteStartArray("input_ids");
            foreach (var e in encodings) { writer.WriteStartArray(); foreach (var id in e.Ids) writer.WriteNumberValue(id); writer.WriteEndArray(); }
            writer.WriteEndArray();
            writer.WriteStartArray("tokens");
            foreach (var e in encodings) { writer.WriteStartArray(); foreach (var t in e.Tokens) writer.WriteStringValue(t); writer.WriteEndArray(); }
            writer.WriteEndArray();
            writer.WriteStartArray("offsets");
            foreach (var e in encodings)
            {
                writer.WriteStartArray();
                foreach (var (start, end) in e.Offsets) { writer.WriteStartArray(); writer.WriteNumberValue(start); writer.WriteNumberValue(end); writer.WriteEndArray(); }
                writer.WriteEndArray();
            }
            writer.WriteEndArray();
            if (request.Chat)
            {
                writer.WriteStartArray("texts");
                foreach (var t in texts) writer.WriteStringValue(t);
                writer.WriteEndArray();
            }
            writer.WriteEndObject();
        });
        return new TokenizeSummary(texts.Count, encodings.Sum(e => (long)e.Ids.Count));
    }

    private static string TextOf(JsonElement row, string path, int line)
    {
        if (row.ValueKind == JsonValueKind.String) return row.GetString()!;
        if (row.ValueKind == JsonValueKind.Object && row.TryGetProperty("text", out var text) && text.ValueKind == JsonValueKind.String) return text.GetString()!;
        throw new InvalidInputException($"{path}:{line}: expected a JSON string or an object with a string \"text\"; found {Describe(row)} (use --chat for \"messages\" rows)");
    }

    private static string RenderChatRow(HfTokenizer tokenizer, JsonElement row, string path, int line, bool addGenerationPrompt)
    {
        if (row.ValueKind != JsonValueKind.Object || !row.TryGetProperty("messages", out var messages) || messages.ValueKind != JsonValueKind.Array)
            throw new InvalidInputException($"{path}:{line}: --chat expects an object with a \"messages\" array; found {Describe(row)}");
        var list = new List<IReadOnlyDictionary<string, object?>>();
        var index = 0;
        foreach (var message in messages.EnumerateArray())
        {
            if (message.ValueKind != JsonValueKind.Object || !message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw new InvalidInputException($"{path}:{line}: messages[{index}] needs a string \"role\"; found {Describe(message)}");
            list.Add(message.EnumerateObject().ToDictionary(p => p.Name, p => (object?)p.Value));
            index++;
        }
        // Other keys of the row (tools, documents, enable_thinking, ...) become template variables.
        var extra = row.EnumerateObject().Where(p => p.Name != "messages").ToDictionary(p => p.Name, p => (object?)p.Value);
        try { return tokenizer.ApplyChatTemplate(list, addGenerationPrompt, extra); }
        catch (Jinja.TemplateException e) { throw new InvalidInputException($"{path}:{line}: {e.Message}"); }
    }

    private static string Describe(JsonElement e)
    {
        var raw = e.GetRawText();
        return raw.Length > 80 ? raw[..77] + "..." : raw;
    }

    private static void WriteAtomically(string path, Action<Utf8JsonWriter> write) => AtomicFile.Write(path, stream =>
    {
        using var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        write(writer);
    });
}
