using System.Text.Json.Nodes;
using Google.Protobuf;

namespace SharpTune.Tokenization;

/// <summary>
/// A SentencePiece `tokenizer.model` (ModelProto, read field by field), turned into the tokenizer.json that
/// transformers' LlamaConverter writes for it: BPE with merges ranked by the merged piece's id, byte fallback,
/// Prepend("▁") + Replace(" ", "▁") normalizer, and the matching decoder. Only BPE models with the identity
/// normalization rule (Llama, Mistral, Gemma) are taken; the rest is refused with a message.
/// </summary>
public sealed class SentencePieceModel
{
    public enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    public sealed record Piece(string Text, float Score, PieceType Type);

    private const string Space = "\u2581";

    public required IReadOnlyList<Piece> Pieces { get; init; }
    public int ModelType { get; init; } = 1;   // 1 unigram (the proto default), 2 BPE, 3 word, 4 char
    public bool ByteFallback { get; init; }
    public int UnkId { get; init; }
    public int BosId { get; init; } = 1;
    public int EosId { get; init; } = 2;
    public int PadId { get; init; } = -1;
    public string NormalizerName { get; init; } = "nmt_nfkc";
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    public string? PieceAt(int id) => id >= 0 && id < Pieces.Count ? Pieces[id].Text : null;

    public static SentencePieceModel Read(string path)
    {
        var pieces = new List<Piece>();
        int modelType = 1, unkId = 0, bosId = 1, eosId = 2, padId = -1;
        bool byteFallback = false, addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true;
        string normalizerName = "nmt_nfkc";
        try
        {
            var model = new CodedInputStream(File.ReadAllBytes(path));
            for (uint tag; (tag = model.ReadTag()) != 0;)
            {
                switch (WireFormat.GetTagFieldNumber(tag))
                {
                    case 1:
                        pieces.Add(ReadPiece(model.ReadBytes()));
                        break;
                    case 2:
                        var trainer = new CodedInputStream(model.ReadBytes().ToByteArray());
                        for (uint t; (t = trainer.ReadTag()) != 0;)
                        {
                            switch (WireFormat.GetTagFieldNumber(t))
                            {
                                case 3: modelType = trainer.ReadEnum(); break;
                                case 35: byteFallback = trainer.ReadBool(); break;
                                case 40: unkId = trainer.ReadInt32(); break;
                                case 41: bosId = trainer.ReadInt32(); break;
                                case 42: eosId = trainer.ReadInt32(); break;
                                case 43: padId = trainer.ReadInt32(); break;
                                default: trainer.SkipLastField(); break;
                            }
                        }
                        break;
                    case 3:
                        var normalizer = new CodedInputStream(model.ReadBytes().ToByteArray());
                        for (uint t; (t = normalizer.ReadTag()) != 0;)
                        {
                            switch (WireFormat.GetTagFieldNumber(t))
                            {
                                case 1: normalizerName = normalizer.ReadString(); break;
                                case 3: addDummyPrefix = normalizer.ReadBool(); break;
                                case 4: removeExtraWhitespaces = normalizer.ReadBool(); break;
                                case 5: escapeWhitespaces = normalizer.ReadBool(); break;
                                default: normalizer.SkipLastField(); break;
                            }
                        }
                        break;
                    default:
                        model.SkipLastField();
                        break;
                }
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new InvalidInputException($"{path}: not a SentencePiece model ({e.Message})");
        }
        if (pieces.Count == 0) throw new InvalidInputException($"{path}: a SentencePiece model without pieces");
        return new SentencePieceModel
        {
            Pieces = pieces, ModelType = modelType, ByteFallback = byteFallback, UnkId = unkId, BosId = bosId, EosId = eosId, PadId = padId,
            NormalizerName = normalizerName, AddDummyPrefix = addDummyPrefix, RemoveExtraWhitespaces = removeExtraWhitespaces, EscapeWhitespaces = escapeWhitespaces,
        };
    }

    private static Piece ReadPiece(ByteString bytes)
    {
        var input = new CodedInputStream(bytes.ToByteArray());
        string text = "";
        float score = 0;
        var type = PieceType.Normal;
        for (uint tag; (tag = input.ReadTag()) != 0;)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: text = input.ReadString(); break;
                case 2: score = input.ReadFloat(); break;
                case 3: type = (PieceType)input.ReadEnum(); break;
                default: input.SkipLastField(); break;
            }
        }
        return new Piece(text, score, type);
    }

    /// <summary>The tokenizer.json transformers would write for this model (add_bos_token / add_eos_token from tokenizer_config.json).</summary>
    public JsonObject ToTokenizerJson(string path, bool addBos, bool addEos)
    {
        if (ModelType != 2)
            throw new InvalidInputException($"{path}: SentencePiece model type {(ModelType == 1 ? "unigram" : ModelType.ToString())} is not supported; supported: bpe (Llama, Mistral, Gemma) — or give a tokenizer.json");
        if (NormalizerName != "identity")
            throw new InvalidInputException($"{path}: SentencePiece normalization rule '{NormalizerName}' is not supported; supported: identity (Llama, Mistral, Gemma) — or give a tokenizer.json");

        var vocab = new JsonObject();
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < Pieces.Count; i++)
        {
            if (ids.TryAdd(Pieces[i].Text, i)) vocab[Pieces[i].Text] = i;
        }
        var merges = new JsonArray();
        foreach (var (left, right) in Merges(ids)) merges.Add((JsonNode)new JsonArray(left, right));

        var normalizers = new JsonArray();
        if (RemoveExtraWhitespaces)
        {
            // As measured against spm_encode: leading spaces (U+0020) go, runs of spaces fold to one, and trailing spaces
            // or "▁" go (sentencepiece trims the end after it has escaped spaces); tabs and other whitespace stay.
            normalizers.Add(new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["Regex"] = "^ +" }, ["content"] = "" });
            normalizers.Add(new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["Regex"] = " {2,}" }, ["content"] = " " });
            normalizers.Add(new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["Regex"] = "[ \u2581]+$" }, ["content"] = "" });
        }
        if (AddDummyPrefix) normalizers.Add(new JsonObject { ["type"] = "Prepend", ["prepend"] = Space });
        if (EscapeWhitespaces) normalizers.Add(new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = Space });

        var decoders = new JsonArray
        {
            new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = Space }, ["content"] = " " },
            new JsonObject { ["type"] = "ByteFallback" },
            new JsonObject { ["type"] = "Fuse" },
        };
        if (AddDummyPrefix) decoders.Add(new JsonObject { ["type"] = "Strip", ["content"] = " ", ["start"] = 1, ["stop"] = 0 });

        // Unknown and control pieces are special added tokens; user-defined symbols are added tokens matched before BPE.
        var added = new JsonArray();
        for (int i = 0; i < Pieces.Count; i++)
        {
            if (Pieces[i].Type is not (PieceType.Unknown or PieceType.Control or PieceType.UserDefined)) continue;
            added.Add(new JsonObject
            {
                ["id"] = i, ["content"] = Pieces[i].Text, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false,
                ["normalized"] = false, ["special"] = Pieces[i].Type != PieceType.UserDefined,
            });
        }

        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = added,
            ["normalizer"] = normalizers.Count == 0 ? null : new JsonObject { ["type"] = "Sequence", ["normalizers"] = normalizers },
            ["pre_tokenizer"] = null,
            ["post_processor"] = PostProcessor(addBos, addEos),
            ["decoder"] = new JsonObject { ["type"] = "Sequence", ["decoders"] = decoders },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = PieceAt(UnkId), ["continuing_subword_prefix"] = null, ["end_of_word_suffix"] = null,
                ["fuse_unk"] = true, ["byte_fallback"] = ByteFallback, ["vocab"] = vocab, ["merges"] = merges,
            },
        };
    }

    /// <summary>
    /// transformers' generate_merges: every split of a piece into two pieces of the vocabulary, ranked by the merged
    /// piece's id (sentencepiece orders pieces by score), then by the left part's length.
    /// </summary>
    private static IEnumerable<(string Left, string Right)> Merges(Dictionary<string, int> ids) =>
        ids.OrderBy(p => p.Value)
            .SelectMany(p => Enumerable.Range(1, Math.Max(0, p.Key.Length - 1))
                .Where(split => !char.IsLowSurrogate(p.Key[split]))
                .Select(split => (Left: p.Key[..split], Right: p.Key[split..]))
                .Where(m => ids.ContainsKey(m.Left) && ids.ContainsKey(m.Right)))
            .Select(m => (m.Left, m.Right));

    private JsonNode? PostProcessor(bool addBos, bool addEos)
    {
        var bos = addBos ? PieceAt(BosId) : null;
        var eos = addEos ? PieceAt(EosId) : null;
        if (bos is null && eos is null) return null;
        JsonArray Sequence(string id, int typeId)
        {
            var items = new JsonArray();
            if (bos is not null) items.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = bos, ["type_id"] = typeId } });
            items.Add(new JsonObject { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } });
            if (eos is not null) items.Add(new JsonObject { ["SpecialToken"] = new JsonObject { ["id"] = eos, ["type_id"] = typeId } });
            return items;
        }
        var pair = Sequence("A", 0);
        foreach (var item in Sequence("B", 1)) pair.Add(item!.DeepClone());
        var specials = new JsonObject();
        foreach (var (token, id) in new[] { (bos, BosId), (eos, EosId) })
            if (token is not null) specials[token] = new JsonObject { ["id"] = token, ["ids"] = new JsonArray(id), ["tokens"] = new JsonArray(token) };
        return new JsonObject { ["type"] = "TemplateProcessing", ["single"] = Sequence("A", 0), ["pair"] = pair, ["special_tokens"] = specials };
    }
}
