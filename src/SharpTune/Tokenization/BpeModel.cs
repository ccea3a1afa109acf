using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>One model token inside a pre-token: its id and the [Start, End) chars of the pre-token it covers.</summary>
internal readonly record struct PieceToken(int Id, int Start, int End);

/// <summary>
/// Byte-pair encoding as in HF tokenizers' BPE model: symbols start as single chars (or byte-fallback
/// &lt;0xNN&gt; tokens, or unk), then the lowest-ranked adjacent pair is merged until none applies.
/// Results are cached per pre-token word because real text repeats words constantly.
/// </summary>
internal sealed class BpeModel
{
    private const int CacheLimit = 200_000;
    private const int CachedWordLength = 128;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<long, (int Rank, int NewId)> _merges;
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly string _continuingSubwordPrefix;
    private readonly string _endOfWordSuffix;
    private readonly int[] _byteTokenIds;
    private readonly ConcurrentDictionary<string, PieceToken[]> _cache = new(StringComparer.Ordinal);
    private int _cachedWords;

    public IReadOnlyDictionary<string, int> Vocab => _vocab;

    private BpeModel(Dictionary<string, int> vocab, Dictionary<long, (int, int)> merges, int? unkId, bool fuseUnk, bool byteFallback,
        bool ignoreMerges, string continuingSubwordPrefix, string endOfWordSuffix)
    {
        _vocab = vocab;
        _merges = merges;
        _unkId = unkId;
        _fuseUnk = fuseUnk;
        _byteFallback = byteFallback;
        _ignoreMerges = ignoreMerges;
        _continuingSubwordPrefix = continuingSubwordPrefix;
        _endOfWordSuffix = endOfWordSuffix;
        _byteTokenIds = new int[256];
        for (var b = 0; b < 256; b++) _byteTokenIds[b] = vocab.TryGetValue($"<0x{b:X2}>", out var id) ? id : -1;
    }

    public static BpeModel From(JsonElement model, string file)
    {
        var type = model.String("type");
        if (type is not null and not "BPE")
            throw TokenizerJson.Unsupported(file, "model", type, "BPE (byte-level and SentencePiece-style)");
        var vocabJson = model.Child("vocab") ?? throw new InvalidInputException($"{file}: model.vocab is missing");
        var vocab = new Dictionary<string, int>(vocabJson.EnumerateObject().Count(), StringComparer.Ordinal);
        foreach (var entry in vocabJson.EnumerateObject()) vocab[entry.Name] = entry.Value.GetInt32();

        var merges = new Dictionary<long, (int, int)>();
        var prefix = model.String("continuing_subword_prefix") ?? "";
        var rank = 0;
        if (model.Child("merges") is { } mergesJson)
        {
            foreach (var merge in mergesJson.EnumerateArray())
            {
                string left, right;
                if (merge.ValueKind == JsonValueKind.Array) { left = merge[0].GetString()!; right = merge[1].GetString()!; }
                else
                {
                    var text = merge.GetString()!;
                    var space = text.IndexOf(' ', 1);
                    if (space < 0) throw new InvalidInputException($"{file}: merge #{rank} '{text}' is not 'left right'");
                    left = text[..space];
                    right = text[(space + 1)..];
                }
                var merged = left + (right.StartsWith(prefix, StringComparison.Ordinal) ? right[prefix.Length..] : right);
                if (vocab.TryGetValue(left, out var a) && vocab.TryGetValue(right, out var b) && vocab.TryGetValue(merged, out var id))
                    merges.TryAdd(Pack(a, b), (rank, id));
                rank++;
            }
        }
        int? unkId = model.String("unk_token") is { } unk && vocab.TryGetValue(unk, out var u) ? u : null;
        return new BpeModel(vocab, merges, unkId, model.Bool("fuse_unk", false), model.Bool("byte_fallback", false),
            model.Bool("ignore_merges", false), prefix, model.String("end_of_word_suffix") ?? "");
    }

    private static long Pack(int a, int b) => ((long)a << 32) | (uint)b;

    public PieceToken[] Tokenize(string word)
    {
        if (_cache.TryGetValue(word, out var cached)) return cached;
        var result = TokenizeUncached(word);
        // A counter instead of _cache.Count: ConcurrentDictionary.Count takes every lock, which serializes batch encoding.
        if (word.Length <= CachedWordLength && Volatile.Read(ref _cachedWords) < CacheLimit && _cache.TryAdd(word, result))
            Interlocked.Increment(ref _cachedWords);
        return result;
    }

    private PieceToken[] TokenizeUncached(string word)
    {
        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole)) return [new PieceToken(whole, 0, word.Length)];

        var ids = new List<int>(word.Length);
        var starts = new List<int>(word.Length);
        var ends = new List<int>(word.Length);
        var lastWasUnk = false;
        for (var i = 0; i < word.Length;)
        {
            var width = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            var symbol = word.Substring(i, width);
            if (i > 0 && _continuingSubwordPrefix.Length > 0) symbol = _continuingSubwordPrefix + symbol;
            if (i + width == word.Length && _endOfWordSuffix.Length > 0) symbol += _endOfWordSuffix;
            if (_vocab.TryGetValue(symbol, out var id))
            {
                ids.Add(id); starts.Add(i); ends.Add(i + width); lastWasUnk = false;
            }
            else if (_byteFallback && ByteIds(word.AsSpan(i, width)) is { } byteIds)
            {
                foreach (var byteId in byteIds) { ids.Add(byteId); starts.Add(i); ends.Add(i + width); }
                lastWasUnk = false;
            }
            else if (_unkId is { } unk)
            {
                if (_fuseUnk && lastWasUnk) ends[^1] = i + width;
                else { ids.Add(unk); starts.Add(i); ends.Add(i + width); }
                lastWasUnk = true;
            }
            i += width;
        }

        return Merge(ids, starts, ends);
    }

    /// <summary>
    /// Repeatedly merges the lowest-ranked adjacent pair, leftmost first on equal ranks (as the reference does),
    /// with a heap over a linked list of symbols so long words (SentencePiece models see whole sentences) stay O(n log n).
    /// </summary>
    private PieceToken[] Merge(List<int> ids, List<int> starts, List<int> ends)
    {
        var count = ids.Count;
        if (count <= 1) return count == 0 ? [] : [new PieceToken(ids[0], starts[0], ends[0])];
        var id = ids.ToArray();
        var end = ends.ToArray();
        var prev = new int[count];
        var next = new int[count];
        var alive = new bool[count];
        for (var k = 0; k < count; k++) { prev[k] = k - 1; next[k] = k + 1 < count ? k + 1 : -1; alive[k] = true; }

        var heap = new PriorityQueue<int, (int Rank, int Pos)>();
        for (var k = 0; k < count - 1; k++)
            if (_merges.TryGetValue(Pack(id[k], id[k + 1]), out var m)) heap.Enqueue(k, (m.Rank, k));

        while (heap.TryDequeue(out var pos, out var priority))
        {
            var right = next[pos];
            if (!alive[pos] || right < 0) continue;
            // Entries go stale when a neighbour merged first; only apply one that still describes this pair.
            if (!_merges.TryGetValue(Pack(id[pos], id[right]), out var merge) || merge.Rank != priority.Rank) continue;
            id[pos] = merge.NewId;
            end[pos] = end[right];
            alive[right] = false;
            next[pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = pos;
            if (prev[pos] >= 0 && _merges.TryGetValue(Pack(id[prev[pos]], id[pos]), out var left)) heap.Enqueue(prev[pos], (left.Rank, prev[pos]));
            if (next[pos] >= 0 && _merges.TryGetValue(Pack(id[pos], id[next[pos]]), out var after)) heap.Enqueue(pos, (after.Rank, pos));
        }

        var tokens = new List<PieceToken>(count);
        for (var k = 0; k >= 0; k = next[k]) tokens.Add(new PieceToken(id[k], starts[k], end[k]));
        return tokens.ToArray();
    }

    private int[]? ByteIds(ReadOnlySpan<char> symbol)
    {
        Span<byte> bytes = stackalloc byte[8];
        var count = Encoding.UTF8.GetBytes(symbol, bytes);
        var ids = new int[count];
        for (var b = 0; b < count; b++)
        {
            ids[b] = _byteTokenIds[bytes[b]];
            if (ids[b] < 0) return null;
        }
        return ids;
    }
}
