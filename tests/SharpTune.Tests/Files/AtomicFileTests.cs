using SharpTune.Files;

namespace SharpTune.Tests.Files;

public sealed class AtomicFileTests
{
    [Fact]
    public void ContentIsReplacedWholeAndNoTempIsLeft()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "sub", "state.json");
        AtomicFile.WriteText(path, "first version, longer than the second");
        AtomicFile.WriteText(path, "second");
        Assert.Equal("second", File.ReadAllText(path));
        Assert.Equal(["state.json"], Directory.GetFileSystemEntries(Path.Combine(dir, "sub")).Select(Path.GetFileName));
    }

    [Fact]
    public void AWriteThatThrowsLeavesTheOldFileIntactAndNoTemp()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "model.bin");
        File.WriteAllBytes(path, [1, 2, 3]);
        string? tempSeen = null;
        var error = Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write(new byte[4096]);
            tempSeen = ((FileStream)stream).Name;
            throw new IOException("disk went away");
        }));
        Assert.Equal("disk went away", error.Message);
        Assert.Equal([1, 2, 3], File.ReadAllBytes(path));
        Assert.Equal(["model.bin"], Directory.GetFileSystemEntries(dir).Select(Path.GetFileName));
        // The temp file was a hidden sibling named after the target and this process.
        Assert.Equal(dir, Path.GetDirectoryName(tempSeen));
        Assert.StartsWith(".model.bin.tmp-", Path.GetFileName(tempSeen));
        Assert.EndsWith($"-{Environment.ProcessId}", tempSeen);
    }

    [Fact]
    public void LinesAreWrittenAsUtf8WithoutAByteOrderMark()
    {
        var path = Path.Combine(TestPaths.TempDir(), "rows.jsonl");
        AtomicFile.WriteLines(path, w => { w.WriteLine("{\"text\": \"é\"}"); w.WriteLine("2"); });
        Assert.Equal("{\"text\": \"é\"}\n2\n"u8.ToArray(), File.ReadAllBytes(path));
    }

    [Fact]
    public void APublishedDownloadReplacesTheTargetUnderItsName()
    {
        var dir = TestPaths.TempDir();
        var incomplete = Path.Combine(dir, "blob.incomplete");
        var final = Path.Combine(dir, "blobs", "abc");
        File.WriteAllText(incomplete, "payload");
        AtomicFile.Publish(incomplete, final);
        Assert.Equal("payload", File.ReadAllText(final));
        Assert.False(File.Exists(incomplete));
    }

    [Fact]
    public void TempNamesParseBackToTheirTargetAndWriter()
    {
        var target = Path.Combine(TestPaths.TempDir(), "checkpoint-7");
        Assert.True(TempName.TryParse(Path.GetFileName(TempName.Beside(target)), out var name, out var pid));
        Assert.Equal(("checkpoint-7", Environment.ProcessId), (name, pid));
        Assert.True(TempName.TryParse(".checkpoint-3.old-4242", out name, out pid));      // written before the random part
        Assert.Equal(("checkpoint-3", 4242), (name, pid));
        Assert.False(TempName.TryParse("checkpoint-3.tmp-12", out _, out _));             // not hidden: a user's folder
        Assert.False(TempName.TryParse(".checkpoint-3.tmp-12x", out _, out _));
    }
}
