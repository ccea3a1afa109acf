using System.Text.Json;
using SharpTune.Modeling;
using SharpTune.Tokenization;

namespace SharpTune.Export;

/// <summary>
/// The tokenizer.* metadata llama.cpp reads (gguf.md "Tokenizer"): byte-level BPE becomes tokenizer.ggml.model "gpt2"
/// with tokens, token types and merges; SentencePiece-style BPE (byte_fallback, ▁ for spaces) becomes "llama" with
/// tokens, scores and token types. Special ids, add_bos/add_eos and the chat template come from the HF files.
/// </summary>
public static class GgufTokenizer
{
    // llama.cpp's token types (llama_token_type), which equal SentencePiece's piece types.
    private const int Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6;

    // Pre-tokenizer regexes convert_hf_to_gguf.py recognises, by the name llama.cpp gives them (tokenizer.ggml.pre).
    private static readonly Dictionary<string, string> KnownSplitPatterns = new(StringComparer.Ordinal)
    {
        [@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"] = "llama-bpe",
        [@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"] = "qwen2",
    };

    private static KeyValuePair<string, GgufValue> Kv(string key, GgufValue value) => KeyValuePair.Create(key, value);

    public static IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata(string dir, ModelConfig config, Action<string> warn)
    {
        var tokenizer = HfTokenizer.FromDirectory(dir);
        int n = config.VocabSize;
        if (tokenizer.VocabSize > n)
            throw new InvalidInputException($"{dir}: the tokenizer has {tokenizer.VocabSize} ids but config.json vocab_size is {n}; the embedding has no row for the extra ids");
        var tokens = new string[n];
        var types = new int[n];
        var scores = new float[n];
        var added = tokenizer.AddedTokens.ToDictionary(t => t.Id);
        for (int id = 0; id < n; id++)
        {
            var text = tokenizer.IdToToken(id);
            // convert_hf_to_gguf pads the vocabulary up to vocab_size with unused placeholders.
            tokens[id] = text ?? $"[PAD{id}]";
            types[id] = text is null ? Unused : added.TryGetValue(id, out var a) ? (a.Special ? Control : UserDefined) : Normal;
        }

        var result = new List<KeyValuePair<string, GgufValue>>();
        var jsonPath = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(jsonPath))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(jsonPath));
            var root = doc.RootElement;
            var model = root.GetProperty("model");
            if (model.String("type") is { } type && type != "BPE")
                throw new InvalidInputException($"{jsonPath}: model type '{type}' cannot be exported to GGUF; supported: BPE (byte-level or SentencePiece-style)");
            var merges = Merges(model);
            if (Mentions(root.Child("pre_tokenizer"), "ByteLevel") || Mentions(root.Child("decoder"), "ByteLevel"))
            {
                result.Add(Kv("tokenizer.ggml.model", GgufValue.Str("gpt2")));
                result.Add(Kv("tokenizer.ggml.pre", GgufValue.Str(PreTokenizerName(root.Child("pre_tokenizer"), jsonPath, warn))));
                result.Add(Kv("tokenizer.ggml.tokens", GgufValue.Strings(tokens)));
                result.Add(Kv("tokenizer.ggml.token_type", GgufValue.Ints(types)));
                result.Add(Kv("tokenizer.ggml.merges", GgufValue.Strings(merges)));
            }
            else
            {
                // SentencePiece BPE as a tokenizer.json: llama.cpp merges the pair whose result scores highest, HF the
                // pair of lowest merge rank, so a merge result scores −rank; tokens no merge makes come after all merges.
                var rank = new Dictionary<string, int>(StringComparer.Ordinal);
                for (int r = 0; r < merges.Count; r++) rank.TryAdd(merges[r].Replace(" ", "", StringComparison.Ordinal), r);
                for (int id = 0; id < n; id++)
                {
                    if (types[id] != Normal) continue;
                    if (tokens[id].Length == 6 && tokens[id].StartsWith("<0x", StringComparison.Ordinal) && tokens[id].EndsWith('>')) types[id] = Byte;
                    scores[id] = rank.TryGetValue(tokens[id], out var r) ? -r : -(merges.Count + id);
                }
                if (tokenizer.UnkTokenId is { } unk && unk < n) types[unk] = Unknown;
                result.Add(Kv("tokenizer.ggml.model", GgufValue.Str("llama")));
                result.Add(Kv("tokenizer.ggml.tokens", GgufValue.Strings(tokens)));
                result.Add(Kv("tokenizer.ggml.scores", GgufValue.Floats(scores)));
                result.Add(Kv("tokenizer.ggml.token_type", GgufValue.Ints(types)));
                result.Add(Kv("tokenizer.ggml.add_space_prefix", GgufValue.Bool(Mentions(root.Child("normalizer"), "Prepend") || PrependsMetaspace(root.Child("pre_tokenizer")))));
            }
        }
        else
        {
            // A tokenizer.model folder: the pieces carry their own scores and types.
            var spm = SentencePieceModel.Read(Path.Combine(dir, "tokenizer.model"));
            for (int id = 0; id < Math.Min(n, spm.Pieces.Count); id++)
            {
                tokens[id] = spm.Pieces[id].Text;
                scores[id] = spm.Pieces[id].Score;
                types[id] = (int)spm.Pieces[id].Type;
            }
            result.Add(Kv("tokenizer.ggml.model", GgufValue.Str("llama")));
            result.Add(Kv("tokenizer.ggml.tokens", GgufValue.Strings(tokens)));
            result.Add(Kv("tokenizer.ggml.scores", GgufValue.Floats(scores)));
            result.Add(Kv("tokenizer.ggml.token_type", GgufValue.Ints(types)));
            result.Add(Kv("tokenizer.ggml.add_space_prefix", GgufValue.Bool(spm.AddDummyPrefix)));
        }

        int? bos = tokenizer.BosTokenId ?? config.BosTokenId;
        int? eos = tokenizer.EosTokenId ?? (config.EosTokenIds.Count > 0 ? config.EosTokenIds[0] : null);
        int? pad = tokenizer.PadTokenId ?? config.PadTokenId;
        foreach (var (key, id) in new[] { ("bos", bos), ("eos", eos), ("unknown", tokenizer.UnkTokenId), ("padding", pad) })
        {
            if (id is null) continue;
            if (id < 0 || id >= n) throw new InvalidInputException($"{dir}: {key} token id {id} is outside the vocabulary (0..{n - 1})");
            result.Add(Kv($"tokenizer.ggml.{key}_token_id", GgufValue.U32(id.Value)));
        }
        // What the HF tokenizer itself adds around a text, so llama.cpp tokenizes prompts the same way.
        var probe = tokenizer.Encode("a", addSpecialTokens: true);
        result.Add(Kv("tokenizer.ggml.add_bos_token", GgufValue.Bool(bos is not null && probe.Count > 0 && probe[0] == bos)));
        result.Add(Kv("tokenizer.ggml.add_eos_token", GgufValue.Bool(eos is not null && probe.Count > 1 && probe[^1] == eos)));
        if (tokenizer.ChatTemplate is { } template) result.Add(Kv("tokenizer.chat_template", GgufValue.Str(template)));
        foreach (var (name, text) in tokenizer.NamedChatTemplates)
            if (name != "default") result.Add(Kv($"tokenizer.chat_template.{name}", GgufValue.Str(text)));
        return result;
    }

    /// <summary>Merges as "left right" strings; tokenizer.json stores them as such strings or as [left, right] pairs.</summary>
    private static List<string> Merges(JsonElement model)
    {
        var merges = new List<string>();
        if (model.Child("merges") is not { ValueKind: JsonValueKind.Array } list) return merges;
        foreach (var m in list.EnumerateArray())
            merges.Add(m.ValueKind == JsonValueKind.Array ? $"{m[0].GetString()} {m[1].GetString()}" : m.GetString()!);
        return merges;
    }

    /// <summary>Whether a component (or any member of a Sequence) has the given type.</summary>
    private static bool Mentions(JsonElement? component, string type)
    {
        if (component is not { ValueKind: JsonValueKind.Object } c) return false;
        if (c.String("type") == type) return true;
        foreach (var key in new[] { "pretokenizers", "normalizers", "decoders" })
            if (c.Child(key) is { ValueKind: JsonValueKind.Array } members && members.EnumerateArray().Any(m => Mentions(m, type))) return true;
        return false;
    }

    private static bool PrependsMetaspace(JsonElement? component)
    {
        if (component is not { ValueKind: JsonValueKind.Object } c) return false;
        if (c.String("type") == "Metaspace")
            return c.String("prepend_scheme") is { } scheme ? scheme != "never" : c.Bool("add_prefix_space", true);
        return c.Child("pretokenizers") is { ValueKind: JsonValueKind.Array } members && members.EnumerateArray().Any(m => PrependsMetaspace(m));
    }

    private static string PreTokenizerName(JsonElement? pre, string file, Action<string> warn)
    {
        string? pattern = SplitPattern(pre);
        if (pattern is null) return "gpt-2";   // ByteLevel's own regex is GPT-2's
        if (KnownSplitPatterns.TryGetValue(pattern, out var name)) return name;
        warn($"{file}: the pre-tokenizer regex is not one llama.cpp names; tokenizer.ggml.pre is 'default', so llama.cpp may split text differently (token ids given directly are unaffected)");
        return "default";
    }

    private static string? SplitPattern(JsonElement? component)
    {
        if (component is not { ValueKind: JsonValueKind.Object } c) return null;
        if (c.String("type") == "Split" && c.Child("pattern") is { } p) return p.String("Regex") ?? p.String("String");
        if (c.Child("pretokenizers") is { ValueKind: JsonValueKind.Array } members)
            foreach (var m in members.EnumerateArray())
                if (SplitPattern(m) is { } found) return found;
        return null;
    }
}
