using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using SharpTune.Tokenization.Unicode;

namespace SharpTune.Tokenization;

/// <summary>
/// Text after normalization plus, for every normalized char, the index of the original char it came from
/// (Map has one extra entry: the original length), so offsets can point into the caller's string.
/// </summary>
internal readonly record struct AlignedText(string Text, int[] Map)
{
    public static AlignedText Identity(string text, int offset)
    {
        var map = new int[text.Length + 1];
        for (var i = 0; i <= text.Length; i++) map[i] = offset + i;
        return new AlignedText(text, map);
    }

    public static AlignedText Slice(AlignedText text, int start, int end)
    {
        var map = new int[end - start + 1];
        Array.Copy(text.Map, start, map, 0, end - start + 1);
        return new AlignedText(text.Text.Substring(start, end - start), map);
    }
}

internal abstract class Normalizer
{
    public const string Supported = "NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace, Strip, Sequence";

    public abstract AlignedText Normalize(AlignedText input);

    public static Normalizer? From(JsonElement? config, string file)
    {
        if (config is not { } c) return null;
        var type = c.String("type");
        return type switch
        {
            "NFC" => new UnicodeNormalizer(NormalForm.Nfc),
            "NFD" => new UnicodeNormalizer(NormalForm.Nfd),
            "NFKC" => new UnicodeNormalizer(NormalForm.Nfkc),
            "NFKD" => new UnicodeNormalizer(NormalForm.Nfkd),
            "Lowercase" => new LowercaseNormalizer(),
            "Prepend" => new PrependNormalizer(c.String("prepend") ?? ""),
            "Replace" => new ReplaceNormalizer(Pattern.From(c.Child("pattern"), file), c.String("content") ?? ""),
            "Strip" => new StripNormalizer(c.Bool("strip_left", true), c.Bool("strip_right", true)),
            "Sequence" => new SequenceNormalizer(c.GetProperty("normalizers").EnumerateArray().Select(n => From(n, file)!).ToArray()),
            _ => throw TokenizerJson.Unsupported(file, "normalizer", type, Supported),
        };
    }
}

/// <summary>A Split/Replace pattern: {"String": "..."} (literal) or {"Regex": "..."}.</summary>
internal static class Pattern
{
    public static Regex From(JsonElement? config, string file)
    {
        if (config is { } c && c.String("String") is { } literal) return new Regex(Regex.Escape(literal), RegexOptions.CultureInvariant);
        if (config is { } r && r.String("Regex") is { } regex) return new Regex(regex, RegexOptions.CultureInvariant | RegexOptions.Compiled);
        throw new InvalidInputException($"{file}: pattern must be {{\"String\": ...}} or {{\"Regex\": ...}}, found {config?.GetRawText() ?? "null"}");
    }
}

internal sealed class SequenceNormalizer(Normalizer[] steps) : Normalizer
{
    public override AlignedText Normalize(AlignedText input)
    {
        foreach (var step in steps) input = step.Normalize(input);
        return input;
    }
}

internal sealed class UnicodeNormalizer(NormalForm form) : Normalizer
{
    public override AlignedText Normalize(AlignedText input)
    {
        var text = UnicodeNormalization.Instance.Normalize(input.Text, form, out var origins);
        if (text == input.Text) return input;
        var map = new int[text.Length + 1];
        for (var i = 0; i < text.Length; i++) map[i] = input.Map[origins[i]];
        map[^1] = input.Map[^1];
        return new AlignedText(text, map);
    }
}

internal sealed class LowercaseNormalizer : Normalizer
{
    public override AlignedText Normalize(AlignedText input)
    {
        var lower = input.Text.ToLowerInvariant();
        return lower.Length == input.Text.Length ? input with { Text = lower } : AlignedText.Identity(lower, input.Map[0]);
    }
}

internal sealed class PrependNormalizer(string prefix) : Normalizer
{
    public override AlignedText Normalize(AlignedText input)
    {
        if (input.Text.Length == 0) return input;
        var map = new int[input.Map.Length + prefix.Length];
        for (var i = 0; i < prefix.Length; i++) map[i] = input.Map[0];
        Array.Copy(input.Map, 0, map, prefix.Length, input.Map.Length);
        return new AlignedText(prefix + input.Text, map);
    }
}

internal sealed class ReplaceNormalizer(Regex pattern, string content) : Normalizer
{
    public override AlignedText Normalize(AlignedText input)
    {
        var matches = pattern.Matches(input.Text);
        if (matches.Count == 0) return input;
        var text = new StringBuilder(input.Text.Length);
        var map = new List<int>(input.Map.Length);
        var last = 0;
        foreach (Match m in matches)
        {
            for (var i = last; i < m.Index; i++) { text.Append(input.Text[i]); map.Add(input.Map[i]); }
            for (var i = 0; i < content.Length; i++) map.Add(input.Map[Math.Min(m.Index + i, m.Index + Math.Max(0, m.Length - 1))]);
            text.Append(content);
            last = m.Index + m.Length;
        }
        for (var i = last; i < input.Text.Length; i++) { text.Append(input.Text[i]); map.Add(input.Map[i]); }
        map.Add(input.Map[^1]);
        return new AlignedText(text.ToString(), map.ToArray());
    }
}

internal sealed class StripNormalizer(bool left, bool right) : Normalizer
{
    public override AlignedText Normalize(AlignedText input)
    {
        var start = 0;
        var end = input.Text.Length;
        if (left) while (start < end && char.IsWhiteSpace(input.Text[start])) start++;
        if (right) while (end > start && char.IsWhiteSpace(input.Text[end - 1])) end--;
        var map = new int[end - start + 1];
        Array.Copy(input.Map, start, map, 0, end - start);
        map[^1] = end < input.Text.Length ? input.Map[end] : input.Map[^1];
        return new AlignedText(input.Text[start..end], map);
    }
}
