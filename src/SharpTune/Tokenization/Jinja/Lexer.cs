using System.Text;
using System.Text.RegularExpressions;

namespace SharpTune.Tokenization.Jinja;

internal enum TokenType
{
    Text, NumericLiteral, StringLiteral, Identifier, Equals, OpenParen, CloseParen, OpenStatement, CloseStatement,
    OpenExpression, CloseExpression, OpenSquareBracket, CloseSquareBracket, OpenCurlyBracket, CloseCurlyBracket,
    Comma, Dot, Colon, Pipe, CallOperator, AdditiveBinaryOperator, MultiplicativeBinaryOperator,
    ExponentiationBinaryOperator, ComparisonBinaryOperator, UnaryOperator, Comment,
}

/// <summary>A lexed token; <see cref="Position"/> is the char offset in the original template source.</summary>
internal sealed record Token(string Value, TokenType Type, int Position)
{
    public string Value { get; set; } = Value;
}

/// <summary>
/// Template source → tokens, with HF's settings (trim_blocks and lstrip_blocks on, one trailing newline dropped,
/// transformers' {% generation %} markers removed). Every char of the preprocessed text remembers where it was in
/// the source, so errors can name line and column.
/// </summary>
internal static class Lexer
{
    private static readonly (string Sequence, TokenType Type)[] OrderedMappingTable =
    [
        ("{%", TokenType.OpenStatement), ("%}", TokenType.CloseStatement), ("{{", TokenType.OpenExpression), ("}}", TokenType.CloseExpression),
        ("(", TokenType.OpenParen), (")", TokenType.CloseParen), ("{", TokenType.OpenCurlyBracket), ("}", TokenType.CloseCurlyBracket),
        ("[", TokenType.OpenSquareBracket), ("]", TokenType.CloseSquareBracket), (",", TokenType.Comma), (".", TokenType.Dot),
        (":", TokenType.Colon), ("|", TokenType.Pipe),
        ("<=", TokenType.ComparisonBinaryOperator), (">=", TokenType.ComparisonBinaryOperator), ("==", TokenType.ComparisonBinaryOperator),
        ("!=", TokenType.ComparisonBinaryOperator), ("<", TokenType.ComparisonBinaryOperator), (">", TokenType.ComparisonBinaryOperator),
        ("+", TokenType.AdditiveBinaryOperator), ("-", TokenType.AdditiveBinaryOperator), ("~", TokenType.AdditiveBinaryOperator),
        ("**", TokenType.ExponentiationBinaryOperator), ("*", TokenType.MultiplicativeBinaryOperator),
        ("//", TokenType.MultiplicativeBinaryOperator), ("/", TokenType.MultiplicativeBinaryOperator), ("%", TokenType.MultiplicativeBinaryOperator),
        ("=", TokenType.Equals),
    ];

    private static readonly Regex LstripBlocks = new(@"^[ \t]*({[#%-])", RegexOptions.Multiline);
    private static readonly Regex TrimBlocks = new(@"([#%-]})\n");
    private static readonly Regex GenerationTag = new(@"(\s*){%(-?)\s*(?:end)?generation\s*(-?)%}(\s*)", RegexOptions.Singleline);

    internal static bool IsJsWhitespace(char c) => char.IsWhiteSpace(c) || c == '\uFEFF';
    private static bool IsWord(char c) => c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '_';
    private static bool IsInteger(char c) => c is >= '0' and <= '9';

    /// <summary>Preprocessed text plus the source offset of each of its chars (and one past the end).</summary>
    private static (string Text, int[] Map) Preprocess(string source)
    {
        var text = source;
        var map = Enumerable.Range(0, source.Length + 1).ToArray();
        if (text.EndsWith('\n')) { text = text[..^1]; map = map[..^2].Append(source.Length - 1).ToArray(); }
        (text, map) = Replace(text, map, LstripBlocks, m => [(m.Groups[1].Value, m.Groups[1].Index)]);
        (text, map) = Replace(text, map, TrimBlocks, m => [(m.Groups[1].Value, m.Groups[1].Index)]);
        (text, map) = Replace(text, map, GenerationTag, m =>
        [
            (m.Groups[2].Length > 0 ? "" : m.Groups[1].Value, m.Groups[1].Index),
            (m.Groups[3].Length > 0 ? "" : m.Groups[4].Value, m.Groups[4].Index),
        ]);
        return (text, map);
    }

    /// <summary>Regex replace that keeps the offset map: each kept piece brings the offsets of the chars it copies.</summary>
    private static (string, int[]) Replace(string text, int[] map, Regex regex, Func<Match, (string Value, int Index)[]> keep)
    {
        var matches = regex.Matches(text);
        if (matches.Count == 0) return (text, map);
        var output = new StringBuilder(text.Length);
        var outMap = new List<int>(map.Length);
        var last = 0;
        foreach (Match m in matches)
        {
            for (var i = last; i < m.Index; i++) { output.Append(text[i]); outMap.Add(map[i]); }
            foreach (var (value, index) in keep(m))
                for (var i = 0; i < value.Length; i++) { output.Append(value[i]); outMap.Add(map[index + i]); }
            last = m.Index + m.Length;
        }
        for (var i = last; i < text.Length; i++) { output.Append(text[i]); outMap.Add(map[i]); }
        outMap.Add(map[^1]);
        return (output.ToString(), outMap.ToArray());
    }

    public static List<Token> Tokenize(string source)
    {
        var (src, map) = Preprocess(source);
        var tokens = new List<Token>();
        var cursor = 0;
        var curlyDepth = 0;

        char At(int i) => i < src.Length ? src[i] : '\0';
        TemplateException Error(string message, int at) => TemplateException.At(source, map[Math.Min(at, src.Length)], message);
        void Add(string value, TokenType type, int at) => tokens.Add(new Token(value, type, map[Math.Min(at, src.Length)]));

        string ConsumeWhile(Func<char, bool> predicate)
        {
            var str = new StringBuilder();
            while (cursor < src.Length && predicate(src[cursor]))
            {
                if (src[cursor] == '\\')
                {
                    ++cursor;
                    if (cursor >= src.Length) throw Error("Unexpected end of input", cursor);
                    var escaped = src[cursor++];
                    if (escaped is 'x' or 'u')
                    {
                        var length = escaped == 'x' ? 2 : 4;
                        var hex = cursor + length <= src.Length ? src.Substring(cursor, length) : src[cursor..];
                        if (hex.Length != length || !hex.All(Uri.IsHexDigit)) throw Error($"Invalid hexadecimal escape sequence: \\{escaped}{hex}", cursor);
                        str.Append((char)Convert.ToInt32(hex, 16));
                        cursor += length;
                        continue;
                    }
                    str.Append(escaped switch
                    {
                        'n' => '\n', 't' => '\t', 'r' => '\r', 'b' => '\b', 'f' => '\f', 'v' => '\v',
                        '\'' => '\'', '"' => '"', '\\' => '\\',
                        _ => throw Error($"Unexpected escaped character: {escaped}", cursor - 1),
                    });
                    continue;
                }
                str.Append(src[cursor++]);
                if (cursor >= src.Length) throw Error("Unexpected end of input", cursor);
            }
            return str.ToString();
        }

        void StripTrailingWhitespace()
        {
            if (tokens.Count > 0 && tokens[^1].Type == TokenType.Text)
            {
                tokens[^1].Value = tokens[^1].Value.TrimEnd(WhitespaceChars);
                if (tokens[^1].Value.Length == 0) tokens.RemoveAt(tokens.Count - 1);
            }
        }

        void SkipLeadingWhitespace()
        {
            while (cursor < src.Length && IsJsWhitespace(src[cursor])) ++cursor;
        }

        while (cursor < src.Length)
        {
            var lastType = tokens.Count > 0 ? tokens[^1].Type : (TokenType?)null;
            if (lastType is null or TokenType.CloseStatement or TokenType.CloseExpression or TokenType.Comment)
            {
                var start = cursor;
                while (cursor < src.Length && !(src[cursor] == '{' && At(cursor + 1) is '%' or '{' or '#')) cursor++;
                if (cursor > start) { Add(src[start..cursor], TokenType.Text, start); continue; }
            }

            if (src[cursor] == '{' && At(cursor + 1) == '#')
            {
                var commentStart = cursor;
                cursor += 2;
                var stripBefore = At(cursor) == '-';
                if (stripBefore) ++cursor;
                var comment = new StringBuilder();
                while (At(cursor) != '#' || At(cursor + 1) != '}')
                {
                    if (cursor + 2 >= src.Length) throw Error("Missing end of comment tag", commentStart);
                    comment.Append(src[cursor++]);
                }
                var text = comment.ToString();
                var stripAfter = text.EndsWith('-');
                if (stripAfter) text = text[..^1];
                if (stripBefore) StripTrailingWhitespace();
                Add(text, TokenType.Comment, commentStart);
                cursor += 2;
                if (stripAfter) SkipLeadingWhitespace();
                continue;
            }

            if (string.CompareOrdinal(src, cursor, "{%-", 0, 3) == 0)
            {
                StripTrailingWhitespace();
                Add("{%", TokenType.OpenStatement, cursor);
                cursor += 3;
                continue;
            }
            if (string.CompareOrdinal(src, cursor, "{{-", 0, 3) == 0)
            {
                StripTrailingWhitespace();
                Add("{{", TokenType.OpenExpression, cursor);
                curlyDepth = 0;
                cursor += 3;
                continue;
            }

            ConsumeWhile(IsJsWhitespace);
            if (cursor >= src.Length) break;

            if (string.CompareOrdinal(src, cursor, "-%}", 0, 3) == 0)
            {
                Add("%}", TokenType.CloseStatement, cursor);
                cursor += 3;
                SkipLeadingWhitespace();
                continue;
            }
            if (string.CompareOrdinal(src, cursor, "-}}", 0, 3) == 0)
            {
                Add("}}", TokenType.CloseExpression, cursor);
                cursor += 3;
                SkipLeadingWhitespace();
                continue;
            }

            var ch = src[cursor];
            if (ch is '-' or '+')
            {
                var previous = tokens.Count > 0 ? tokens[^1].Type : (TokenType?)null;
                if (previous is null or TokenType.Text) throw Error($"Unexpected character: {ch}", cursor);
                if (previous is not (TokenType.Identifier or TokenType.NumericLiteral or TokenType.StringLiteral or TokenType.CloseParen or TokenType.CloseSquareBracket))
                {
                    var start = cursor;
                    ++cursor;
                    var num = ConsumeWhile(IsInteger);
                    if (num.Length > 0 && At(cursor) == '.' && IsInteger(At(cursor + 1)))
                    {
                        ++cursor;
                        num = $"{num}.{ConsumeWhile(IsInteger)}";
                    }
                    Add($"{ch}{num}", num.Length > 0 ? TokenType.NumericLiteral : TokenType.UnaryOperator, start);
                    continue;
                }
            }

            var matched = false;
            foreach (var (sequence, type) in OrderedMappingTable)
            {
                if (sequence == "}}" && curlyDepth > 0) continue;
                if (string.CompareOrdinal(src, cursor, sequence, 0, sequence.Length) != 0 || cursor + sequence.Length > src.Length) continue;
                Add(sequence, type, cursor);
                if (type == TokenType.OpenExpression) curlyDepth = 0;
                else if (type == TokenType.OpenCurlyBracket) ++curlyDepth;
                else if (type == TokenType.CloseCurlyBracket) --curlyDepth;
                cursor += sequence.Length;
                matched = true;
                break;
            }
            if (matched) continue;

            if (ch is '\'' or '"')
            {
                var start = cursor;
                ++cursor;
                var str = ConsumeWhile(c => c != ch);
                if (cursor >= src.Length) throw Error("Unexpected end of input", start);
                Add(str, TokenType.StringLiteral, start);
                ++cursor;
                continue;
            }
            if (IsInteger(ch))
            {
                var start = cursor;
                var num = ConsumeWhile(IsInteger);
                if ((tokens.Count == 0 || tokens[^1].Type != TokenType.Dot) && At(cursor) == '.' && IsInteger(At(cursor + 1)))
                {
                    ++cursor;
                    num = $"{num}.{ConsumeWhile(IsInteger)}";
                }
                Add(num, TokenType.NumericLiteral, start);
                continue;
            }
            if (IsWord(ch))
            {
                var start = cursor;
                Add(ConsumeWhile(IsWord), TokenType.Identifier, start);
                continue;
            }
            throw Error($"Unexpected character: {ch}", cursor);
        }
        return tokens;
    }

    private static readonly char[] WhitespaceChars = Enumerable.Range(0, 0x10000).Select(i => (char)i).Where(IsJsWhitespace).ToArray();
}
