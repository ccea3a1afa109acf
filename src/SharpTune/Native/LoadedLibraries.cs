namespace SharpTune.Native;

/// <summary>Shared libraries this process has mapped, read from /proc/self/maps (Linux; elsewhere nothing is known).</summary>
public static class LoadedLibraries
{
    /// <summary>The path of the first mapped library whose file name is one of <paramref name="fileNames"/>, or null.</summary>
    public static string? PathOf(params string[] fileNames)
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return null;
        return File.ReadLines(maps).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).LastOrDefault())
            .FirstOrDefault(p => p is not null && p.StartsWith('/') && fileNames.Contains(Path.GetFileName(p)));
    }
}
