using System.Collections.Frozen;
using System.Globalization;
using System.IO.Compression;
using System.Text;

namespace SharpTune.Tokenization.Unicode;

/// <summary>The four Unicode normalization forms (UAX #15).</summary>
public enum NormalForm { Nfc, Nfd, Nfkc, Nfkd }

/// <summary>
/// Unicode normalization (UAX #15) in managed code over an embedded Unicode 15.0 table, so tokenizers normalize the
/// same way whatever the globalization mode: under InvariantGlobalization (how the CLI ships) .NET's
/// <see cref="string.Normalize()"/> leaves non-ASCII text unchanged. Every output char carries the index of the input
/// char it came from, so offsets survive normalization (a composed char maps to its starter).
/// </summary>
public sealed class UnicodeNormalization
{
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    private static readonly Lazy<UnicodeNormalization> Shared = new(Load);

    private readonly FrozenDictionary<int, byte> _combiningClass;
    private readonly FrozenDictionary<int, int[]> _canonical;      // full canonical decomposition
    private readonly FrozenDictionary<int, int[]> _compatibility;  // full compatibility decomposition (K forms)
    private readonly FrozenDictionary<long, int> _compose;         // (starter << 21 | mark) → primary composite

    private UnicodeNormalization(Dictionary<int, byte> ccc, Dictionary<int, (bool Compat, int[] Parts, bool Excluded)> steps)
    {
        _combiningClass = ccc.ToFrozenDictionary();
        var canonical = new Dictionary<int, int[]>();
        var compatibility = new Dictionary<int, int[]>();
        var compose = new Dictionary<long, int>();
        foreach (var (cp, step) in steps)
        {
            compatibility[cp] = Expand(step.Parts, steps, compat: true);
            if (step.Compat) continue;
            canonical[cp] = Expand(step.Parts, steps, compat: false);
            // Primary composites: two-char canonical decompositions not excluded from composition.
            if (step.Parts.Length == 2 && !step.Excluded) compose[Pair(step.Parts[0], step.Parts[1])] = cp;
        }
        _canonical = canonical.ToFrozenDictionary();
        _compatibility = compatibility.ToFrozenDictionary();
        _compose = compose.ToFrozenDictionary();
    }

    /// <summary>The table embedded in this assembly, loaded once.</summary>
    public static UnicodeNormalization Instance => Shared.Value;

    public string Normalize(string text, NormalForm form) => Normalize(text, form, out _);

    /// <summary>Normalizes <paramref name="text"/>; <paramref name="origins"/>[i] is the input char index output char i came from.</summary>
    public string Normalize(string text, NormalForm form, out int[] origins)
    {
        var points = new List<(int Cp, int Origin)>(text.Length);
        var table = form is NormalForm.Nfkc or NormalForm.Nfkd ? _compatibility : _canonical;
        for (var i = 0; i < text.Length; i++)
        {
            var origin = i;
            int cp = text[i];
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) cp = char.ConvertToUtf32(text[i], text[++i]);
            Decompose(cp, origin, table, points);
        }
        ReorderCanonically(points);
        if (form is NormalForm.Nfc or NormalForm.Nfkc) Compose(points);

        var builder = new StringBuilder(points.Count);
        var map = new List<int>(points.Count);
        foreach (var (cp, origin) in points)
        {
            if (cp >= 0x10000) { builder.Append(char.ConvertFromUtf32(cp)); map.Add(origin); map.Add(origin); }
            else { builder.Append((char)cp); map.Add(origin); }
        }
        origins = map.ToArray();
        return builder.ToString();
    }

    private byte CombiningClass(int cp) => _combiningClass.GetValueOrDefault(cp);

    private static void Decompose(int cp, int origin, FrozenDictionary<int, int[]> table, List<(int, int)> output)
    {
        if (cp is >= SBase and < SBase + SCount)
        {
            var index = cp - SBase;
            output.Add((LBase + index / NCount, origin));
            output.Add((VBase + index % NCount / TCount, origin));
            if (index % TCount != 0) output.Add((TBase + index % TCount, origin));
        }
        else if (table.TryGetValue(cp, out var parts)) foreach (var part in parts) output.Add((part, origin));
        else output.Add((cp, origin));
    }

    /// <summary>Stable sort of each run of non-starters by combining class (the canonical ordering algorithm).</summary>
    private void ReorderCanonically(List<(int Cp, int Origin)> points)
    {
        for (var i = 1; i < points.Count; i++)
        {
            var ccc = CombiningClass(points[i].Cp);
            if (ccc == 0) continue;
            var j = i;
            while (j > 0 && CombiningClass(points[j - 1].Cp) > ccc) { (points[j - 1], points[j]) = (points[j], points[j - 1]); j--; }
        }
    }

    /// <summary>The canonical composition algorithm: each char joins the last starter unless blocked.</summary>
    private void Compose(List<(int Cp, int Origin)> points)
    {
        if (points.Count == 0) return;
        var starter = CombiningClass(points[0].Cp) == 0 ? 0 : -1;
        var write = 1;
        var lastClass = starter == 0 ? 0 : 256;
        for (var read = 1; read < points.Count; read++)
        {
            var (cp, origin) = points[read];
            var ccc = CombiningClass(cp);
            var blocked = starter < 0 || (lastClass != 0 && lastClass >= ccc) || (lastClass == 0 && write - 1 != starter);
            if (!blocked && TryCompose(points[starter].Cp, cp) is { } composite)
            {
                points[starter] = (composite, points[starter].Origin);
                continue;
            }
            if (ccc == 0) { starter = write; lastClass = 0; }
            else lastClass = ccc;
            points[write++] = (cp, origin);
        }
        points.RemoveRange(write, points.Count - write);
    }

    private int? TryCompose(int first, int second)
    {
        if (first is >= LBase and < LBase + LCount && second is >= VBase and < VBase + VCount)
            return SBase + ((first - LBase) * VCount + (second - VBase)) * TCount;
        if (first is >= SBase and < SBase + SCount && (first - SBase) % TCount == 0 && second is > TBase and < TBase + TCount)
            return first + (second - TBase);
        return _compose.TryGetValue(Pair(first, second), out var composite) ? composite : null;
    }

    private static long Pair(int first, int second) => ((long)first << 21) | (uint)second;

    private static int[] Expand(int[] parts, Dictionary<int, (bool Compat, int[] Parts, bool Excluded)> steps, bool compat)
    {
        var result = new List<int>();
        foreach (var part in parts)
        {
            if (steps.TryGetValue(part, out var step) && (compat || !step.Compat)) result.AddRange(Expand(step.Parts, steps, compat));
            else if (part is >= SBase and < SBase + SCount)
            {
                var index = part - SBase;
                result.Add(LBase + index / NCount);
                result.Add(VBase + index % NCount / TCount);
                if (index % TCount != 0) result.Add(TBase + index % TCount);
            }
            else result.Add(part);
        }
        return result.ToArray();
    }

    private static UnicodeNormalization Load()
    {
        const string name = "SharpTune.Tokenization.Unicode.normalization-data.txt.gz";
        using var stream = typeof(UnicodeNormalization).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded resource {name} is missing from the build");
        using var reader = new StreamReader(new GZipStream(stream, CompressionMode.Decompress), Encoding.ASCII);
        var ccc = new Dictionary<int, byte>();
        var steps = new Dictionary<int, (bool, int[], bool)>();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            var fields = line.Split(' ');
            var cp = int.Parse(fields[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var cls = byte.Parse(fields[1], CultureInfo.InvariantCulture);
            if (cls != 0) ccc[cp] = cls;
            if (fields.Length < 3) continue;
            var excluded = fields[^1] == "X";
            var parts = fields[3..(excluded ? ^1 : ^0)].Select(p => int.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            steps[cp] = (fields[2] == "K", parts, excluded);
        }
        return new UnicodeNormalization(ccc, steps);
    }
}
