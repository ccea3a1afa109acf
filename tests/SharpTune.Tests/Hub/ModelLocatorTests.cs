using SharpTune.Hub;

namespace SharpTune.Tests.Hub;

public sealed class ModelLocatorTests
{
    [Fact]
    public void RepoIdResolvesToTheSnapshotThatRefsMainNames()
    {
        var cache = TestPaths.TempDir();
        var repo = Path.Combine(cache, "models--acme--tiny-llama");
        var snapshot = Path.Combine(repo, "snapshots", "0123abcd");
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), "0123abcd\n");
        foreach (var file in new[] { "config.json", "model.safetensors" })
            File.Copy(Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama", file), Path.Combine(snapshot, file));
        // Offline: the cache alone answers (the online path is covered by Hub/HubDownloadTests against a loopback hub).
        using (new SharpTune.Tests.Hub.HubEnvironment(endpoint: null, cache: cache))
        {
            Assert.Equal(snapshot, ModelLocator.Resolve("acme/tiny-llama"));
            var (code, stdout, stderr) = CliRunner.Run("generate", "--model", "acme/tiny-llama", "--prompt-ids", "5,246,225,161,38,44,164,206,52,10", "--max-new-tokens", "8", "--output-ids");
            Assert.True(code == 0, stderr);
            Assert.Equal("[4,201,140,47,173,123,21,84]", stdout.Trim());
            var missing = Assert.Throws<InvalidInputException>(() => ModelLocator.Resolve("acme/absent"));
            Assert.StartsWith($"acme/absent@main: not in the cache ({Path.Combine(cache, "models--acme--absent")}) and HF_HUB_OFFLINE is set", missing.Message);
        }
    }
}
