using System.Globalization;

namespace SharpTune.Config;

/// <summary>An inclusive/exclusive interval a number must fall in.</summary>
public sealed record NumberRange(double? Min, bool MinInclusive, double? Max, bool MaxInclusive)
{
    /// <summary>Reads a declared range: "≥ 1", "> 0", "≤ 5", "&lt; 5", or an interval such as "[0, 1)" or "(0, 1]".</summary>
    public static NumberRange Parse(string spec)
    {
        string s = spec.Trim();
        double Num(string text) => double.Parse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture);
        if (s.StartsWith('≥')) return new(Num(s[1..]), true, null, false);
        if (s.StartsWith('>')) return new(Num(s[1..]), false, null, false);
        if (s.StartsWith('≤')) return new(null, false, Num(s[1..]), true);
        if (s.StartsWith('<')) return new(null, false, Num(s[1..]), false);
        var parts = s.Length > 2 && s[0] is '[' or '(' && s[^1] is ']' or ')' ? s[1..^1].Split(',') : [];
        if (parts.Length != 2) throw new FormatException($"'{spec}' is not a range; expected ≥ N, > N, ≤ N, < N or an interval like [0, 1)");
        return new(Num(parts[0]), s[0] == '[', Num(parts[1]), s[^1] == ']');
    }

    public bool Contains(double x) =>
        (Min is not { } lo || (MinInclusive ? x >= lo : x > lo)) && (Max is not { } hi || (MaxInclusive ? x <= hi : x < hi));

    public string Describe()
    {
        string Num(double v) => v.ToString("R", CultureInfo.InvariantCulture);
        if (Min is { } lo && Max is { } hi) return $"in {(MinInclusive ? "[" : "(")}{Num(lo)}, {Num(hi)}{(MaxInclusive ? "]" : ")")}";
        if (Min is { } a) return $"{(MinInclusive ? "≥" : ">")} {Num(a)}";
        if (Max is { } b) return $"{(MaxInclusive ? "≤" : "<")} {Num(b)}";
        return "";
    }
}
