using System.Globalization;
using System.Text.RegularExpressions;

namespace SharpTune.Data;

/// <summary>
/// One part of a split expression as the datasets library reads it (ReadInstruction): SPLIT, SPLIT[FROM:TO] with row
/// numbers (negative = from the end) or percents, rounded to the closest row (Python round: half to even).
/// </summary>
public sealed record SplitSlice(string Split, long? From, long? To, bool Percent)
{
    public bool IsWhole => From is null && To is null;
    /// <summary>Whether the bounds need the row count (percents or negative numbers or both ends open-ended from the back).</summary>
    public bool NeedsCount => Percent || From < 0 || To < 0;

    /// <summary>[start, end) over <paramref name="rows"/> rows (datasets' _rel_to_abs_instr).</summary>
    public (long Start, long End) Bounds(long rows)
    {
        long Abs(long? value, long whenOpen)
        {
            if (value is not { } v) return whenOpen;
            if (Percent) v = (long)Math.Round(v * rows / 100.0, MidpointRounding.ToEven);
            if (v < 0) v = Math.Max(rows + v, 0);
            return Math.Min(v, rows);
        }
        return (Abs(From, 0), Abs(To, rows));
    }

    public override string ToString() =>
        IsWhole ? Split : $"{Split}[{From}{(Percent && From != null ? "%" : "")}:{To}{(Percent && To != null ? "%" : "")}]";
}

/// <summary>Parses split: values: "train", "train[:2000]", "train[10%:20%]", "train[-100:]", "train[:50%]+test[:10]".</summary>
public static partial class SplitSlices
{
    [GeneratedRegex(@"^(?<split>\w+)(\[(?<from>-?\d+)?(?<fromPct>%)?:(?<to>-?\d+)?(?<toPct>%)?\])?$")]
    private static partial Regex PartPattern();

    public static IReadOnlyList<SplitSlice> Parse(string text, string key)
    {
        var parts = new List<SplitSlice>();
        foreach (var raw in text.Split('+'))
        {
            string part = raw.Trim();
            var m = PartPattern().Match(part);
            if (!m.Success)
                throw new InvalidInputException($"{key}.split: '{text}' is not a split expression; expected NAME or NAME[FROM:TO] with row numbers or percents, joined by '+' (e.g. train[:2000], train[10%:20%], train+test)");
            bool fromPct = m.Groups["fromPct"].Success, toPct = m.Groups["toPct"].Success;
            bool hasFrom = m.Groups["from"].Success, hasTo = m.Groups["to"].Success;
            if ((fromPct && !hasFrom) || (toPct && !hasTo))
                throw new InvalidInputException($"{key}.split: '{part}' has a % without a number");
            if (hasFrom && hasTo && fromPct != toPct)
                throw new InvalidInputException($"{key}.split: '{part}' mixes percents and row numbers; use the same unit on both sides");
            long? from = hasFrom ? long.Parse(m.Groups["from"].Value, CultureInfo.InvariantCulture) : null;
            long? to = hasTo ? long.Parse(m.Groups["to"].Value, CultureInfo.InvariantCulture) : null;
            bool percent = fromPct || toPct;
            if (percent && (Math.Abs(from ?? 0) > 100 || Math.Abs(to ?? 0) > 100))
                throw new InvalidInputException($"{key}.split: '{part}': percent bounds must lie in [-100, 100]");
            parts.Add(new SplitSlice(m.Groups["split"].Value, from, to, percent));
        }
        return parts;
    }
}
