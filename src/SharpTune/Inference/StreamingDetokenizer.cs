using SharpTune.Tokenization;

namespace SharpTune.Inference;

/// <summary>
/// Turns one row's new token ids into text pieces as they arrive. Text that could still be the start of a stop
/// string, or an unfinished UTF-8 character (decoded as U+FFFD), is held back until the next token settles it, so the
/// pieces never contain a stop string and concatenate to the final text.
/// </summary>
public sealed class StreamingDetokenizer(HfTokenizer tokenizer, IReadOnlyList<string> stopStrings)
{
    private readonly List<int> ids = [];
    private readonly System.Text.StringBuilder emitted = new();

    /// <summary>True once the decoded text contains a stop string; the text ends just before it.</summary>
    public bool StopHit { get; private set; }

    /// <summary>The text handed out so far.</summary>
    public string Text => emitted.ToString();

    /// <summary>Adds a token and returns the text that became safe to show (often empty).</summary>
    public string Push(long id)
    {
        if (StopHit) return "";
        ids.Add((int)id);
        var full = Decode();
        int cut = EarliestStop(full);
        if (cut >= 0)
        {
            StopHit = true;
            return Emit(full, Math.Max(cut, emitted.Length));
        }
        int safe = full.Length - HeldBack(full);
        return Emit(full, safe);
    }

    /// <summary>The rest of the text once the row has ended (nothing is held back any more).</summary>
    public string Finish() => StopHit ? "" : Emit(Decode(), int.MaxValue);

    private string Emit(string full, int end)
    {
        end = Math.Min(end, full.Length);
        if (end <= emitted.Length) return "";
        // Decoding more tokens can in rare cases rewrite earlier text (space clean-up); the emitted prefix stands.
        var piece = full[emitted.Length..end];
        emitted.Append(piece);
        return piece;
    }

    private string Decode() => tokenizer.Decode(ids.Where(i => tokenizer.IdToToken(i) is not null), skipSpecialTokens: true);

    private int EarliestStop(string full)
    {
        int best = -1;
        foreach (var stop in stopStrings)
        {
            if (stop.Length == 0) continue;
            // Only generated text counts; a stop string is searched where it could have newly appeared.
            int from = Math.Max(0, emitted.Length - stop.Length + 1);
            int at = full.IndexOf(stop, Math.Min(from, full.Length), StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best)) best = at;
        }
        return best;
    }

    /// <summary>Characters at the end to keep back: an unfinished character, or the longest suffix that starts a stop string.</summary>
    private int HeldBack(string full)
    {
        int hold = 0;
        while (hold < Math.Min(3, full.Length) && full[full.Length - 1 - hold] == '\uFFFD') hold++;
        foreach (var stop in stopStrings)
            for (int n = Math.Min(stop.Length - 1, full.Length); n > hold; n--)
                if (string.CompareOrdinal(full, full.Length - n, stop, 0, n) == 0) { hold = n; break; }
        return hold;
    }
}
