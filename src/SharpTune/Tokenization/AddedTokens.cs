using System.Text.Json;

namespace SharpTune.Tokenization;

/// <summary>An entry of tokenizer.json "added_tokens".</summary>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip, bool Normalized, bool SingleWord)
{
    internal static AddedToken From(JsonElement e) => new(
        e.GetProperty("id").GetInt32(), e.GetProperty("content").GetString()!, e.Bool("special", false),
        e.Bool("lstrip", false), e.Bool("rstrip", false), e.Bool("normalized", false), e.Bool("single_word", false));
}

/// <summary>
/// Finds added tokens in text, leftmost-longest like the reference splitters, honouring
/// lstrip/rstrip (the match swallows adjacent whitespace) and single_word (no word chars around it).
/// </summary>
internal sealed class AddedTokenMatcher
{
    private sealed class Node
    {
        public Dictionary<char, Node>? Next;
        public AddedToken? Token;
    }

    private readonly Node _root = new();
    private readonly bool _empty;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _empty = true;
        foreach (var token in tokens)
        {
            if (token.Content.Length == 0) continue;
            var node = _root;
            foreach (var c in token.Content)
            {
                node.Next ??= [];
                if (!node.Next.TryGetValue(c, out var child)) node.Next[c] = child = new Node();
                node = child;
            }
            node.Token = token;
            _empty = false;
        }
    }

    /// <summary>Splits text into sections: (Start, End, Token) where Token is null for ordinary text.</summary>
    public List<(int Start, int End, AddedToken? Token)> Split(string text)
    {
        var sections = new List<(int Start, int End, AddedToken? Token)>();
        if (_empty) { sections.Add((0, text.Length, null)); return sections; }
        var textStart = 0;
        for (var i = 0; i < text.Length;)
        {
            var (token, length) = LongestAt(text, i);
            if (token is null || (token.SingleWord && !IsWordBoundary(text, i, i + length))) { i++; continue; }
            var matchStart = i;
            var matchEnd = i + length;
            if (token.LStrip) while (matchStart > textStart && char.IsWhiteSpace(text[matchStart - 1])) matchStart--;
            if (token.RStrip) while (matchEnd < text.Length && char.IsWhiteSpace(text[matchEnd])) matchEnd++;
            if (matchStart > textStart) sections.Add((textStart, matchStart, null));
            sections.Add((matchStart, matchEnd, token));
            textStart = i = matchEnd;
        }
        if (textStart < text.Length) sections.Add((textStart, text.Length, null));
        return sections;
    }

    private (AddedToken? Token, int Length) LongestAt(string text, int start)
    {
        var node = _root;
        AddedToken? best = null;
        var bestLength = 0;
        for (var j = start; j < text.Length && node.Next is not null && node.Next.TryGetValue(text[j], out var child); j++)
        {
            node = child;
            if (node.Token is not null) { best = node.Token; bestLength = j - start + 1; }
        }
        return (best, bestLength);
    }

    private static bool IsWordBoundary(string text, int start, int end) =>
        (start == 0 || !IsWordChar(text[start - 1])) && (end == text.Length || !IsWordChar(text[end]));

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
