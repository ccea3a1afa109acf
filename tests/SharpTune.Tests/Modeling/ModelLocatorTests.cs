using SharpTune.Hub;

namespace SharpTune.Tests.Modeling;

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
        var previous = Environment.GetEnvironmentVariable("HF_HUB_CACHE");
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", cache);
        try
        {
            Assert.Equal(snapshot, ModelLocator.Resolve("acme/tiny-llama"));
            var (code, stdout, stderr) = CliRunner.Run("generate", "--model", "acme/tiny-llama", "--prompt-ids", "5,246,225,161,38,44,164,206,52,10", "--max-new-tokens", "8", "--output-ids");
            Assert.True(code == 0, stderr);
            Assert.Equal("[4,201,140,47,173,123,21,84]", stdout.Trim());
            var missing = Assert.Throws<InvalidInputException>(() => ModelLocator.Resolve("acme/absent"));
            Assert.Contains("acme/absent: not a local folder and not in the Hugging Face cache", missing.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable("HF_HUB_CACHE", previous);
        }
    }
}
