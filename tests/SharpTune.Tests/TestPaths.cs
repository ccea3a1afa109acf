namespace SharpTune.Tests;

/// <summary>Locations tests read from: the repository root and the ../shared folder beside it.</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string Shared => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));
    public static string Fixtures => Path.Combine(Shared, "fixtures");

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !File.Exists(Path.Combine(dir.FullName, "SharpTune.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("SharpTune.sln not found above " + AppContext.BaseDirectory);
    }

    public static string TempDir()
    {
        var path = Path.Combine(Path.GetTempPath(), "sharptune-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }
}
