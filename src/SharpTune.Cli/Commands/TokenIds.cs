namespace SharpTune.Cli.Commands;

/// <summary>Token ids given on the command line as "1,2,3".</summary>
internal static class TokenIds
{
    /// <summary>The ids of <paramref name="text"/>; none for null. Anything but non-negative integers is refused naming <paramref name="option"/>.</summary>
    public static long[] Parse(string? text, string option)
    {
        if (text is null) return [];
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new InvalidInputException($"{option}: empty; expected comma-separated token ids like 1,2,3");
        return parts.Select(p => long.TryParse(p, out var id) && id >= 0
            ? id
            : throw new InvalidInputException($"{option}: '{p}' is not a token id; expected comma-separated non-negative integers")).ToArray();
    }
}
