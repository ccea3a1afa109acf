namespace SharpTune.Tests;

/// <summary>
/// Locations tests read from. Fixtures (reference numbers and tiny random weights computed by transformers) live in the
/// repository under tests/fixtures, so a clone with nothing beside it passes. Data that may not be committed lives in
/// ../shared beside the clone; tests that need it call <see cref="RequireShared"/>.
/// </summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string Fixtures => Path.Combine(RepoRoot, "tests", "fixtures");
    public static string Shared => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    /// <summary>
    /// The path of <paramref name="relative"/> under ../shared. When it is absent the test is skipped with the reason,
    /// except under CI=true, where missing data is a failure (CI runs with ../shared beside the clone).
    /// </summary>
    public static string RequireShared(string relative)
    {
        var path = Path.Combine(Shared, relative);
        Require(File.Exists(path) || Directory.Exists(path), $"../shared/{relative} is not beside this clone (it may not be committed)");
        return path;
    }

    /// <summary>Skips the test with <paramref name="reason"/> when <paramref name="available"/> is false; fails instead under CI=true.</summary>
    public static void Require(bool available, string reason)
    {
        if (available) return;
        if (IsCi) Assert.Fail($"CI=true but {reason}");
        throw new SkipException(reason);
    }

    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

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
