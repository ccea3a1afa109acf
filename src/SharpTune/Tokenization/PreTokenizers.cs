using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace SharpTune.Tokenization;

internal abstract class PreTokenizer
{
    public const string Supported = "ByteLevel, Split, Metaspace, Digits, Whitespace, WhitespaceSplit, Punctuation, Sequence";

    /// <summary>Splits (and possibly rewrites) one piece; <paramref name="firstSection"/> is true for the text before any added token.</summary>
    public abstract void Split(AlignedText piece, bool firstSection, List<AlignedText> output);

    public static PreTokenizer? From(JsonElement? config, string file)
    {
        if (config is not { } c) return null;
        var type = c.String("type");
        return type switch
        {
            "ByteLevel" => new ByteLevelPreTokenizer(c.Bool("add_prefix_space", true), c.Bool("use_regex", true)),
            "Split" => new SplitPreTokenizer(Pattern.From(c.Child("pattern"), file), ParseBehavior(c.String("behavior"), file), c.Bool("invert", false)),
            "Metaspace" => new MetaspacePreTokenizer(c.String("replacement") ?? "\u2581", MetaspacePrependScheme(c), c.Bool("split", true)),
            "Digits" => new SplitPreTokenizer(new Regex(@"\p{Nd}", RegexOptions.CultureInvariant), c.Bool("individual_digits", false) ? SplitBehavior.Isolated : SplitBehavior.Contiguous, false),
            "Whitespace" => new SplitPreTokenizer(new Regex(@"\w+|[^\w\s]+", RegexOptions.CultureInvariant), SplitBehavior.Removed, true),
            "WhitespaceSplit" => new SplitPreTokenizer(new Regex(@"\s+", RegexOptions.CultureInvariant), SplitBehavior.Removed, false),
            "Punctuation" => new SplitPreTokenizer(new Regex(@"\p{P}|[$+<=>^`|~]", RegexOptions.CultureInvariant), ParseBehavior(c.String("behavior") ?? "Isolated", file), false),
            "Sequence" => new SequencePreTokenizer(c.GetProperty("pretokenizers").EnumerateArray().Select(p => From(p, file)!).ToArray()),
            _ => throw TokenizerJson.Unsupported(file, "pre_tokenizer", type, Supported),
        };
    }

    internal static string MetaspacePrependScheme(JsonElement c) =>
        c.String("prepend_scheme") ?? (c.Bool("add_prefix_space", true) ? "always" : "never");

    private static SplitBehavior ParseBehavior(string? value, string file) => value switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw new InvalidInputException($"{file}: unsupported Split behavior '{value}'; supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous"),
    };

    protected static AlignedText Slice(AlignedText text, int start, int end) => AlignedText.Slice(text, start, end);

    /// <summary>
    /// Regex matches by code point. .NET regexes see a supplementary char as two surrogates (category Cs),
    /// while the reference tokenizers see one code point (e.g. 𝐀 is \p{L}); so such chars are replaced by one
    /// BMP stand-in of the same general category before matching and the spans are mapped back.
    /// </summary>
    internal static List<(int Start, int End)> Matches(Regex regex, string text)
    {
        var result = new List<(int, int)>();
        if (!text.AsSpan().ContainsAnyInRange('\uD800', '\uDFFF'))
        {
            for (var m = regex.Match(text); m.Success; m = m.NextMatch())
                if (m.Length > 0) result.Add((m.Index, m.Index + m.Length));
            return result;
        }
        var compact = new StringBuilder(text.Length);
        var origin = new List<int>(text.Length + 1);
        for (var i = 0; i < text.Length; i++)
        {
            origin.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                compact.Append(StandIn(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))));
                i++;
            }
            else compact.Append(text[i]);
        }
        origin.Add(text.Length);
        for (var m = regex.Match(compact.ToString()); m.Success; m = m.NextMatch())
            if (m.Length > 0) result.Add((origin[m.Index], origin[m.Index + m.Length]));
        return result;
    }

    private static char StandIn(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter => 'Ж',
        UnicodeCategory.LowercaseLetter => 'ж',
        UnicodeCategory.TitlecaseLetter => 'ǅ',
        UnicodeCategory.ModifierLetter => 'ʰ',
        UnicodeCategory.OtherLetter => 'ア',
        UnicodeCategory.DecimalDigitNumber => '٣',
        UnicodeCategory.LetterNumber => 'Ⅻ',
        UnicodeCategory.OtherNumber => '²',
        UnicodeCategory.NonSpacingMark => '\u0301',
        UnicodeCategory.SpacingCombiningMark => '\u0903',
        UnicodeCategory.EnclosingMark => '\u20DD',
        UnicodeCategory.MathSymbol => '∑',
        UnicodeCategory.CurrencySymbol => '€',
        UnicodeCategory.ModifierSymbol => '˅',
        UnicodeCategory.ConnectorPunctuation => '‿',
        UnicodeCategory.DashPunctuation => '‐',
        UnicodeCategory.OpenPunctuation => '⁅',
        UnicodeCategory.ClosePunctuation => '⁆',
        UnicodeCategory.InitialQuotePunctuation => '«',
        UnicodeCategory.FinalQuotePunctuation => '»',
        UnicodeCategory.OtherPunctuation => '¡',
        UnicodeCategory.PrivateUse => '\uE000',
        UnicodeCategory.Format => '\u200B',
        UnicodeCategory.OtherNotAssigned => '\u0378',
        _ => '⌘', // OtherSymbol (emoji) and anything else
    };
}

internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

internal sealed class SequencePreTokenizer(PreTokenizer[] steps) : PreTokenizer
{
    public override void Split(AlignedText piece, bool firstSection, List<AlignedText> output)
    {
        var current = new List<AlignedText> { piece };
        foreach (var step in steps)
        {
            var next = new List<AlignedText>();
            foreach (var p in current) step.Split(p, firstSection, next);
            current = next;
        }
        output.AddRange(current);
    }
}

internal sealed class SplitPreTokenizer(Regex regex, SplitBehavior behavior, bool invert) : PreTokenizer
{
    public override void Split(AlignedText piece, bool firstSection, List<AlignedText> output)
    {
        var text = piece.Text;
        // Pieces covering the whole text, flagged as delimiter (matched) or not.
        var parts = new List<(int Start, int End, bool Delimiter)>();
        var last = 0;
        foreach (var (start, end) in Matches(regex, text))
        {
            if (start > last) parts.Add((last, start, invert));
            parts.Add((start, end, !invert));
            last = end;
        }
        if (last < text.Length) parts.Add((last, text.Length, invert));

        var spans = new List<(int Start, int End)>();
        switch (behavior)
        {
            case SplitBehavior.Removed:
                spans.AddRange(parts.Where(p => !p.Delimiter).Select(p => (p.Start, p.End)));
                break;
            case SplitBehavior.Isolated:
                spans.AddRange(parts.Select(p => (p.Start, p.End)));
                break;
            case SplitBehavior.MergedWithPrevious:
                for (var i = 0; i < parts.Count; i++)
                {
                    if (parts[i].Delimiter && i > 0 && !parts[i - 1].Delimiter) spans[^1] = (spans[^1].Start, parts[i].End);
                    else spans.Add((parts[i].Start, parts[i].End));
                }
                break;
            case SplitBehavior.MergedWithNext:
                for (var i = parts.Count - 1; i >= 0; i--)
                {
                    if (parts[i].Delimiter && i < parts.Count - 1 && !parts[i + 1].Delimiter) spans[^1] = (parts[i].Start, spans[^1].End);
                    else spans.Add((parts[i].Start, parts[i].End));
                }
                spans.Reverse();
                break;
            case SplitBehavior.Contiguous:
                for (var i = 0; i < parts.Count; i++)
                {
                    if (i > 0 && parts[i].Delimiter == parts[i - 1].Delimiter) spans[^1] = (spans[^1].Start, parts[i].End);
                    else spans.Add((parts[i].Start, parts[i].End));
                }
                break;
        }
        foreach (var (start, end) in spans)
            if (end > start) output.Add(Slice(piece, start, end));
    }
}

internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : PreTokenizer
{
    internal static readonly Regex Gpt2Pattern = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant | RegexOptions.Compiled);

    public override void Split(AlignedText piece, bool firstSection, List<AlignedText> output)
    {
        if (addPrefixSpace && !piece.Text.StartsWith(' '))
        {
            var map = new int[piece.Map.Length + 1];
            map[0] = piece.Map[0];
            Array.Copy(piece.Map, 0, map, 1, piece.Map.Length);
            piece = new AlignedText(" " + piece.Text, map);
        }
        if (!useRegex) { output.Add(ToBytes(piece)); return; }
        foreach (var (start, end) in Matches(Gpt2Pattern, piece.Text)) output.Add(ToBytes(Slice(piece, start, end)));
    }

    /// <summary>Rewrites text as one alphabet char per UTF-8 byte; every byte maps to the char it encodes.</summary>
    internal static AlignedText ToBytes(AlignedText piece)
    {
        var text = piece.Text;
        if (!System.Text.Ascii.IsValid(text))
            return ToBytesSlow(piece);
        // ASCII: one byte per char, so the offset map is unchanged.
        return new AlignedText(string.Create(text.Length, text, (span, source) =>
        {
            for (var i = 0; i < source.Length; i++) span[i] = ByteLevelAlphabet.ByteToChar[source[i]];
        }), piece.Map);
    }

    private static AlignedText ToBytesSlow(AlignedText piece)
    {
        var text = piece.Text;
        var chars = new StringBuilder(text.Length * 2);
        var map = new List<int>(text.Length * 2 + 1);
        Span<byte> buffer = stackalloc byte[4];
        for (var i = 0; i < text.Length; i++)
        {
            var width = char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]) ? 2 : 1;
            var count = Encoding.UTF8.GetBytes(text.AsSpan(i, width), buffer);
            for (var b = 0; b < count; b++) { chars.Append(ByteLevelAlphabet.ByteToChar[buffer[b]]); map.Add(piece.Map[i]); }
            i += width - 1;
        }
        map.Add(piece.Map[^1]);
        return new AlignedText(chars.ToString(), map.ToArray());
    }
}

internal sealed class MetaspacePreTokenizer(string replacement, string prependScheme, bool split) : PreTokenizer
{
    public override void Split(AlignedText piece, bool firstSection, List<AlignedText> output)
    {
        var text = piece.Text.Replace(" ", replacement);
        var map = piece.Map;
        if (replacement.Length != 1 && text.Length != piece.Text.Length) map = AlignedText.Identity(text, piece.Map[0]).Map;
        var prepend = prependScheme == "always" || (prependScheme == "first" && firstSection);
        if (prepend && !text.StartsWith(replacement, StringComparison.Ordinal))
        {
            var withPrefix = new int[map.Length + replacement.Length];
            for (var i = 0; i < replacement.Length; i++) withPrefix[i] = map[0];
            Array.Copy(map, 0, withPrefix, replacement.Length, map.Length);
            text = replacement + text;
            map = withPrefix;
        }
        var rewritten = new AlignedText(text, map);
        if (!split) { output.Add(rewritten); return; }
        var start = 0;
        for (var i = 1; i <= text.Length; i++)
        {
            if (i == text.Length || string.CompareOrdinal(text, i, replacement, 0, replacement.Length) == 0)
            {
                if (i > start) output.Add(Slice(rewritten, start, i));
                start = i;
            }
        }
    }
}
