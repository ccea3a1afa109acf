using System.Security.Cryptography;

namespace SharpTune.Data;

/// <summary>
/// dataset_exact_deduplication as axolotl does it: a row is dropped when its tokenized content (ids and labels; prompt and
/// answers for preference rows) equals an earlier row's. One set of seen rows spans every dataset in config order (the
/// merged training data), and held-out rows (test_datasets) are checked against it too, so no eval row repeats a training row.
/// Rows are compared by SHA-256 of their content, as axolotl hashes each row.
/// </summary>
public sealed class ExactDeduplicator
{
    private readonly HashSet<string> _seen = new(StringComparer.Ordinal);

    /// <summary>Rows dropped so far.</summary>
    public long Dropped { get; private set; }

    public List<TokenizedExample> Keep(List<TokenizedExample> rows) => Keep(rows, r => [r.InputIds, r.Labels]);

    public List<PreferenceExample> Keep(List<PreferenceExample> pairs) => Keep(pairs, p => [p.PromptIds, p.ChosenIds, p.RejectedIds]);

    /// <summary>Unpaired examples grouped by source row (a paired row gives two): a group is one row.</summary>
    public List<UnpairedExample[]> Keep(List<UnpairedExample[]> groups) =>
        Keep(groups, g => g.SelectMany(u => new[] { u.PromptIds, u.CompletionIds, [u.Desirable ? 1 : 0] }).ToArray());

    public List<PromptExample> Keep(List<PromptExample> prompts) =>
        Keep(prompts, p => [p.PromptIds, System.Text.Encoding.UTF8.GetBytes(p.RowJson).Select(b => (int)b).ToArray()]);

    private List<T> Keep<T>(List<T> rows, Func<T, int[][]> content)
    {
        var kept = new List<T>(rows.Count);
        foreach (var row in rows)
        {
            if (_seen.Add(Hash(content(row)))) kept.Add(row);
            else Dropped++;
        }
        return kept;
    }

    private static string Hash(int[][] parts)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        Span<byte> four = stackalloc byte[4];
        foreach (var part in parts)
        {
            // The length first: [1,2]+[3] and [1]+[2,3] are different rows.
            BitConverter.TryWriteBytes(four, part.Length);
            sha.AppendData(four);
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(part.AsSpan()));
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }
}
