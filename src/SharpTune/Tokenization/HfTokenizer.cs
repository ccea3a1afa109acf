using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>Ids, token strings and (start, end) UTF-16 char offsets into the encoded text; special tokens get (0, 0).</summary>
public sealed record EncodingResult(IReadOnlyList<int> Ids, IReadOnlyList<string> Tokens, IReadOnlyList<(int Start, int End)> Offsets);

/// <summary>
/// A Hugging Face tokenizer read from a model folder's tokenizer.json (+ tokenizer_config.json,
/// special_tokens_map.json), producing the ids the Python/JS stacks produce, plus its chat template.
/// Thread-safe: encode and decode may run concurrently.
/// </summary>
public sealed class HfTokenizer
{
    private readonly Normalizer? _normalizer;
    private readonly PreTokenizer? _preTokenizer;
    private readonly BpeModel _model;
    private readonly PostProcessor? _postProcessor;
    private readonly Decoder? _decoder;
    private readonly AddedTokenMatcher _addedTokens;
    private readonly AddedTokenMatcher? _normalizedAddedTokens;
    private readonly Dictionary<string, AddedToken> _addedByContent;
    private readonly Dictionary<int, string> _idToToken;
    private readonly HashSet<string> _specialTokens;
    private readonly bool _cleanUpTokenizationSpaces;
    private readonly IReadOnlyDictionary<string, string> _namedTemplates;
    // Parsed templates are reused: one template renders thousands of rows during data preparation.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, ChatTemplate> _parsedTemplates = new(StringComparer.Ordinal);

    private HfTokenizer(Normalizer? normalizer, PreTokenizer? preTokenizer, BpeModel model, PostProcessor? postProcessor, Decoder? decoder,
        List<AddedToken> addedTokens, SpecialTokenNames names, bool cleanUp, string? chatTemplate, IReadOnlyDictionary<string, string> namedTemplates)
    {
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _model = model;
        _postProcessor = postProcessor;
        _decoder = decoder;
        AddedTokens = addedTokens;
        // Tokens with normalized=false are found in the raw text; normalized=true ones in each normalized piece,
        // under their normalized spelling (what the reference tokenizers do).
        _addedTokens = new AddedTokenMatcher(addedTokens.Where(t => !t.Normalized || normalizer is null));
        var normalizedTokens = addedTokens.Where(t => t.Normalized && normalizer is not null)
            .Select(t => t with { Content = normalizer!.Normalize(AlignedText.Identity(t.Content, 0)).Text }).ToList();
        _normalizedAddedTokens = normalizedTokens.Count > 0 ? new AddedTokenMatcher(normalizedTokens) : null;
        _addedByContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var t in addedTokens) _addedByContent[t.Content] = t;
        _idToToken = new Dictionary<int, string>(model.Vocab.Count + addedTokens.Count);
        foreach (var (token, id) in model.Vocab) _idToToken[id] = token;
        foreach (var t in addedTokens) _idToToken[t.Id] = t.Content;
        _specialTokens = new HashSet<string>(addedTokens.Where(t => t.Special).Select(t => t.Content), StringComparer.Ordinal);
        foreach (var extra in names.Additional) _specialTokens.Add(extra);
        _cleanUpTokenizationSpaces = cleanUp;
        ChatTemplate = chatTemplate;
        _namedTemplates = namedTemplates;
        VocabSize = _idToToken.Count == 0 ? 0 : _idToToken.Keys.Max() + 1;
        BosToken = names.Bos; EosToken = names.Eos; PadToken = names.Pad; UnkToken = names.Unk;
        BosTokenId = names.Bos is null ? null : TokenToId(names.Bos);
        EosTokenId = names.Eos is null ? null : TokenToId(names.Eos);
        PadTokenId = names.Pad is null ? null : TokenToId(names.Pad);
        UnkTokenId = names.Unk is null ? null : TokenToId(names.Unk);
    }

    /// <summary>Number of ids (highest id + 1), counting added tokens, like len(tokenizer) in transformers.</summary>
    public int VocabSize { get; }
    public int? BosTokenId { get; }
    public int? EosTokenId { get; }
    public int? PadTokenId { get; }
    public int? UnkTokenId { get; }
    public string? BosToken { get; }
    public string? EosToken { get; }
    public string? PadToken { get; }
    public string? UnkToken { get; }
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The template from tokenizer_config.json (a string, or the "default" entry of a named list), or chat_template.jinja.</summary>
    public string? ChatTemplate { get; }

    /// <summary>Named templates of a tokenizer_config.json list form (e.g. "default", "tool_use").</summary>
    public IReadOnlyDictionary<string, string> NamedChatTemplates => _namedTemplates;

    public static HfTokenizer FromDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new InvalidInputException($"{dir}: tokenizer directory not found");
        var tokenizerPath = Path.Combine(dir, "tokenizer.json");
        using var configDoc = TokenizerJson.TryLoad(dir, "tokenizer_config.json");
        using var specialMapDoc = TokenizerJson.TryLoad(dir, "special_tokens_map.json");
        var config = configDoc?.RootElement;
        var (chatTemplate, named) = ReadChatTemplates(dir, config);
        var cleanUp = config?.Bool("clean_up_tokenization_spaces", true) ?? true;

        using var tokenizerJson = TokenizerJson.TryLoad(dir, "tokenizer.json");
        SentencePieceModel? sentencePiece = null;
        if (tokenizerJson is null)
        {
            // No tokenizer.json: convert tokenizer.model as transformers would.
            tokenizerPath = Path.Combine(dir, "tokenizer.model");
            if (!File.Exists(tokenizerPath))
                throw new InvalidInputException($"{dir}: no tokenizer.json (or tokenizer.json.gz) or tokenizer.model in the tokenizer directory");
            sentencePiece = SentencePieceModel.Read(tokenizerPath);
        }
        using var converted = sentencePiece is null ? null : JsonDocument.Parse(sentencePiece.ToTokenizerJson(tokenizerPath,
            config?.Bool("add_bos_token", true) ?? true, config?.Bool("add_eos_token", false) ?? false).ToJsonString());
        // A bare tokenizer.model names its special pieces itself (LlamaTokenizer's <unk>, <s>, </s> defaults).
        using var specialsFromModel = specialMapDoc is null && sentencePiece is not null ? SentencePieceSpecials(sentencePiece) : null;
        var names = SpecialTokenNames.From(config, specialMapDoc?.RootElement ?? specialsFromModel?.RootElement);
        var root = (tokenizerJson ?? converted)!.RootElement;
        var model = BpeModel.From(root.GetProperty("model"), tokenizerPath);
        var normalizer = Normalizer.From(root.Child("normalizer"), tokenizerPath);
        var preTokenizer = PreTokenizer.From(root.Child("pre_tokenizer"), tokenizerPath);
        var postProcessor = PostProcessor.From(root.Child("post_processor"), tokenizerPath);
        var decoder = Decoder.From(root.Child("decoder"), tokenizerPath);
        var added = root.Child("added_tokens")?.EnumerateArray().Select(AddedToken.From).ToList() ?? [];
        return new HfTokenizer(normalizer, preTokenizer, model, postProcessor, decoder, added, names, cleanUp, chatTemplate, named);
    }

    private static JsonDocument SentencePieceSpecials(SentencePieceModel model)
    {
        var names = new System.Text.Json.Nodes.JsonObject();
        foreach (var (key, id) in new[] { ("unk_token", model.UnkId), ("bos_token", model.BosId), ("eos_token", model.EosId), ("pad_token", model.PadId) })
            if (model.PieceAt(id) is { } piece) names[key] = piece;
        return JsonDocument.Parse(names.ToJsonString());
    }

    private static (string? Template, IReadOnlyDictionary<string, string> Named) ReadChatTemplates(string dir, JsonElement? config)
    {
        var named = new Dictionary<string, string>(StringComparer.Ordinal);
        string? template = null;
        if (config?.Child("chat_template") is { } value)
        {
            if (value.ValueKind == JsonValueKind.String) template = value.GetString();
            else if (value.ValueKind == JsonValueKind.Array)
            {
                foreach (var entry in value.EnumerateArray())
                    if (entry.String("name") is { } name && entry.String("template") is { } text) named[name] = text;
                template = named.GetValueOrDefault("default");
            }
        }
        var jinjaFile = Path.Combine(dir, "chat_template.jinja");
        if (template is null && File.Exists(jinjaFile)) template = File.ReadAllText(jinjaFile);
        return (template, named);
    }

    public int? TokenToId(string token) =>
        _addedByContent.TryGetValue(token, out var added) ? added.Id : _model.Vocab.TryGetValue(token, out var id) ? id : null;

    public string? IdToToken(int id) => _idToToken.GetValueOrDefault(id);

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens = true) => EncodeWithOffsets(text, addSpecialTokens).Ids;

    public IReadOnlyList<IReadOnlyList<int>> EncodeBatch(IReadOnlyList<string> texts, bool addSpecialTokens = true)
    {
        var results = new IReadOnlyList<int>[texts.Count];
        Parallel.For(0, texts.Count, i => results[i] = Encode(texts[i], addSpecialTokens));
        return results;
    }

    public EncodingResult EncodeWithOffsets(string text, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        var offsets = new List<(int, int)>();
        var pieces = new List<AlignedText>();
        var sections = _addedTokens.Split(text);
        for (var s = 0; s < sections.Count; s++)
        {
            var (start, end, token) = sections[s];
            if (token is not null) { ids.Add(token.Id); offsets.Add((start, end)); continue; }
            if (end == start) continue;
            var aligned = AlignedText.Identity(text.Substring(start, end - start), start);
            if (_normalizer is not null) aligned = _normalizer.Normalize(aligned);
            if (aligned.Text.Length == 0) continue;
            var subsections = _normalizedAddedTokens?.Split(aligned.Text) ?? [(0, aligned.Text.Length, null)];
            foreach (var (subStart, subEnd, subToken) in subsections)
            {
                if (subToken is not null) { ids.Add(subToken.Id); offsets.Add((aligned.Map[subStart], aligned.Map[subEnd])); continue; }
                var part = subsections.Count == 1 ? aligned : AlignedText.Slice(aligned, subStart, subEnd);
                pieces.Clear();
                if (_preTokenizer is null) pieces.Add(part);
                else _preTokenizer.Split(part, s == 0, pieces);
                foreach (var piece in pieces)
                {
                    foreach (var t in _model.Tokenize(piece.Text))
                    {
                        ids.Add(t.Id);
                        offsets.Add((piece.Map[t.Start], piece.Map[t.End]));
                    }
                }
            }
        }
        if (addSpecialTokens && _postProcessor is not null)
        {
            var finalIds = new List<int>(ids.Count + 4);
            var finalOffsets = new List<(int, int)>(ids.Count + 4);
            for (var g = 0; g <= _postProcessor.SpecialIds.Count; g++)
            {
                if (g == _postProcessor.SequenceIndex) { finalIds.AddRange(ids); finalOffsets.AddRange(offsets); }
                if (g < _postProcessor.SpecialIds.Count)
                    foreach (var id in _postProcessor.SpecialIds[g]) { finalIds.Add(id); finalOffsets.Add((0, 0)); }
            }
            ids = finalIds;
            offsets = finalOffsets;
        }
        var tokens = ids.Select(id => _idToToken.GetValueOrDefault(id) ?? "").ToArray();
        return new EncodingResult(ids, tokens, offsets);
    }

    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            if (!_idToToken.TryGetValue(id, out var token))
                throw new InvalidInputException($"token id {id} is outside the vocabulary (0..{VocabSize - 1})");
            if (skipSpecialTokens && _specialTokens.Contains(token)) continue;
            tokens.Add(token);
        }
        var text = _decoder is null ? string.Join(' ', tokens) : string.Concat(_decoder.DecodeChain(tokens, _addedByContent.ContainsKey));
        return _cleanUpTokenizationSpaces ? CleanUpTokenizationSpaces(text) : text;
    }

    /// <summary>transformers' clean_up_tokenization: drops the space before punctuation and English contractions.</summary>
    private static string CleanUpTokenizationSpaces(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
        .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");

    /// <summary>
    /// Renders the chat template the way transformers' apply_chat_template does: messages, add_generation_prompt,
    /// the special tokens (bos_token, eos_token, unk_token, pad_token) and any extra variables (tools, documents, enable_thinking, ...).
    /// </summary>
    public string ApplyChatTemplate(IReadOnlyList<IReadOnlyDictionary<string, object?>> messages, bool addGenerationPrompt = false,
        IReadOnlyDictionary<string, object?>? extraVariables = null, string? templateOverride = null)
    {
        var source = templateOverride;
        if (source is null && extraVariables?.GetValueOrDefault("tools") is not null && _namedTemplates.TryGetValue("tool_use", out var toolUse)) source = toolUse;
        source ??= ChatTemplate ?? throw new InvalidInputException(
            "the tokenizer has no chat_template (tokenizer_config.json or chat_template.jinja); set chat_template: to a built-in name or chat_template_jinja: to a template");
        var variables = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = messages,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = BosToken,
            ["eos_token"] = EosToken,
            ["unk_token"] = UnkToken,
            ["pad_token"] = PadToken,
        };
        if (extraVariables is not null) foreach (var (key, value) in extraVariables) variables[key] = value;
        return _parsedTemplates.GetOrAdd(source, s => new ChatTemplate(s)).Render(variables);
    }
}

/// <summary>Special-token strings from tokenizer_config.json, falling back to special_tokens_map.json.</summary>
internal sealed record SpecialTokenNames(string? Bos, string? Eos, string? Pad, string? Unk, IReadOnlyList<string> Additional)
{
    public static SpecialTokenNames From(JsonElement? config, JsonElement? specialMap)
    {
        string? Name(string key) => Read(config, key) ?? Read(specialMap, key);
        var additional = new List<string>();
        foreach (var source in new[] { config, specialMap })
            if (source?.Child("additional_special_tokens") is { ValueKind: JsonValueKind.Array } list)
                foreach (var item in list.EnumerateArray())
                    if (ContentOf(item) is { } content) additional.Add(content);
        return new SpecialTokenNames(Name("bos_token"), Name("eos_token"), Name("pad_token"), Name("unk_token"), additional);
    }

    private static string? Read(JsonElement? source, string key) => source?.Child(key) is { } value ? ContentOf(value) : null;

    private static string? ContentOf(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Object => value.String("content"),
        _ => null,
    };
}
