using SharpTune.Files;

namespace SharpTune.Tests.Files;

public sealed class AtomicFolderTests
{
    [Fact]
    public void ReplaceSwapsTheWholeFolderAndLeavesNoHiddenFolders()
    {
        var parent = TestPaths.TempDir();
        var path = Path.Combine(parent, "checkpoint-2");
        AtomicFolder.Replace(path, dir => { File.WriteAllText(Path.Combine(dir, "a.txt"), "old"); File.WriteAllText(Path.Combine(dir, "stale.txt"), "x"); });
        AtomicFolder.Replace(path, dir => File.WriteAllText(Path.Combine(dir, "a.txt"), "new"));
        Assert.Equal(["a.txt"], Directory.GetFiles(path).Select(Path.GetFileName));
        Assert.Equal("new", File.ReadAllText(Path.Combine(path, "a.txt")));
        Assert.Equal(["checkpoint-2"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName));
    }

    [Fact]
    public void AFillThatThrowsLeavesTheOldFolderIntactAndNoTemp()
    {
        var parent = TestPaths.TempDir();
        var path = Path.Combine(parent, "checkpoint-2");
        AtomicFolder.Replace(path, dir => File.WriteAllText(Path.Combine(dir, "a.txt"), "old"));
        Assert.Throws<IOException>(() => AtomicFolder.Replace(path, dir =>
        {
            File.WriteAllText(Path.Combine(dir, "a.txt"), "half");
            throw new IOException("disk full");
        }));
        Assert.Equal("old", File.ReadAllText(Path.Combine(path, "a.txt")));
        Assert.Equal(["checkpoint-2"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName));
    }

    [Fact]
    public void CreateKeepsAFolderThatIsAlreadyThere()
    {
        var parent = TestPaths.TempDir();
        var path = Path.Combine(parent, "cache-key");
        Assert.True(AtomicFolder.Create(path, dir => File.WriteAllText(Path.Combine(dir, "data.bin"), "first")));
        bool filled = false;
        Assert.False(AtomicFolder.Create(path, dir => { filled = true; File.WriteAllText(Path.Combine(dir, "data.bin"), "second"); }));
        Assert.False(filled);
        Assert.Equal("first", File.ReadAllText(Path.Combine(path, "data.bin")));
    }

    [Fact]
    public void CreateLosingTheRaceDiscardsItsFill()
    {
        var parent = TestPaths.TempDir();
        var path = Path.Combine(parent, "job");
        // Another writer's folder appears while this one is being filled.
        Assert.False(AtomicFolder.Create(path, dir =>
        {
            Directory.CreateDirectory(path);
            File.WriteAllText(Path.Combine(path, "config.yaml"), "winner");
            File.WriteAllText(Path.Combine(dir, "config.yaml"), "loser");
        }));
        Assert.Equal("winner", File.ReadAllText(Path.Combine(path, "config.yaml")));
        Assert.Equal(["job"], Directory.GetFileSystemEntries(parent).Select(Path.GetFileName));
    }

    [Fact]
    public void RemoveStaleDeletesOnlyDeadWritersLeftovers()
    {
        var parent = TestPaths.TempDir();
        int dead = DeadProcessId();
        // This process's own leftovers count as stale (it is not writing them now); pid 1 (init) is alive.
        string[] stale = [$".checkpoint-3.tmp-{dead}", $".checkpoint-4.old-0123456789abcdef0123456789abcdef-{dead}", $".checkpoint-5.tmp-{Environment.ProcessId}"];
        string[] kept = ["checkpoint-3", ".checkpoint-6.tmp-1", ".merged.tmp-" + dead];
        foreach (var name in stale.Concat(kept)) Directory.CreateDirectory(Path.Combine(parent, name));
        Assert.Equal(3, AtomicFolder.RemoveStale(parent, "checkpoint-"));
        Assert.Equal([".checkpoint-6.tmp-1", ".merged.tmp-" + dead, "checkpoint-3"], Directory.GetDirectories(parent).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void DeleteRemovesTheFolderWholly()
    {
        var parent = TestPaths.TempDir();
        var path = Path.Combine(parent, "checkpoint-1");
        Directory.CreateDirectory(Path.Combine(path, "nested"));
        File.WriteAllText(Path.Combine(path, "nested", "x"), "x");
        AtomicFolder.Delete(path);
        Assert.Empty(Directory.GetFileSystemEntries(parent));
    }

    private static int DeadProcessId()
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }
}
