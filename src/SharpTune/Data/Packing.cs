namespace SharpTune.Data;

/// <summary>Bin packing of variable-length rows into fixed-capacity training rows.</summary>
public static class Packing
{
    /// <summary>
    /// Best-fit-decreasing: rows longest first, each into the fullest bin it still fits. Deterministic (ties by index);
    /// each bin lists its row indices in ascending order.
    /// </summary>
    public static IReadOnlyList<int[]> BestFitDecreasing(IReadOnlyList<int> lengths, int capacity)
    {
        var order = Enumerable.Range(0, lengths.Count).OrderByDescending(i => lengths[i]).ThenBy(i => i).ToArray();
        var bins = new List<List<int>>();
        var remaining = new List<int>();
        // (space left, bin) ordered by space: the best fit is the smallest space ≥ length.
        var open = new SortedSet<(int Space, int Bin)>();
        foreach (int i in order)
        {
            int length = lengths[i];
            if (length > capacity) throw new ArgumentException($"row {i} has {length} tokens, more than the bin capacity {capacity}");
            var fits = open.GetViewBetween((length, -1), (capacity, int.MaxValue));
            int bin;
            if (fits.Count == 0)
            {
                bin = bins.Count;
                bins.Add([]);
                remaining.Add(capacity);
            }
            else
            {
                bin = fits.Min.Bin;
                open.Remove(fits.Min);
            }
            bins[bin].Add(i);
            remaining[bin] -= length;
            if (remaining[bin] > 0) open.Add((remaining[bin], bin));
        }
        return bins.Select(b => b.Order().ToArray()).ToList();
    }

    /// <summary>Tokens in the bins over bins × capacity.</summary>
    public static double Efficiency(IReadOnlyList<int[]> bins, IReadOnlyList<int> lengths, int capacity) =>
        bins.Count == 0 ? 0 : bins.Sum(b => (double)b.Sum(i => lengths[i])) / ((double)bins.Count * capacity);
}

/// <summary>Deterministic shuffles from a 64-bit seed (SplitMix64), the same on every platform and .NET version.</summary>
public static class SeededShuffle
{
    public static int[] Permutation(int count, long seed)
    {
        var result = Enumerable.Range(0, count).ToArray();
        ulong state = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + 0xD1B54A32D192ED03UL);
        for (int i = count - 1; i > 0; i--)
        {
            int j = (int)(Next(ref state) % (ulong)(i + 1));
            (result[i], result[j]) = (result[j], result[i]);
        }
        return result;
    }

    private static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
