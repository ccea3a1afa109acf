using static SharpTune.Tests.CliRunner;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Tests.Modeling;

namespace SharpTune.Tests.Peft;

public sealed class MergeCommandTests
{
    private readonly HfFixture fixture = new("llama_lora");


    [Fact]
    public void MergedFolderScoresLikeBasePlusAdapter()
    {
        var outDir = Path.Combine(TestPaths.TempDir(), "merged");
        var (code, _, err) = Run("merge", "--model", Path.Combine(fixture.Dir, "base"), "--adapter", Path.Combine(fixture.Dir, "adapter"), "--out", outDir);
        Assert.True(code == 0, err);
        using var merged = ModelLoader.Load(outDir);
        var result = Scorer.Score(merged, new ScoreRequest(fixture.InputIds, fixture.Labels));
        Assert.Equal(fixture.Golden["merged_loss"]!.GetValue<double>(), result.Loss, 1e-4);
        Assert.True(File.Exists(Path.Combine(outDir, "generation_config.json")));
        Assert.Contains("\"torch_dtype\": \"float32\"", File.ReadAllText(Path.Combine(outDir, "config.json")));
    }

    [Fact]
    public void MergeIntoTheBaseFolderItselfIsRefused()
    {
        var baseDir = Path.Combine(fixture.Dir, "base");
        var (code, _, err) = Run("merge", "--model", baseDir, "--adapter", Path.Combine(fixture.Dir, "adapter"), "--out", baseDir);
        Assert.Equal(2, code);
        Assert.Contains("is the base model folder", err);
    }

    [Fact]
    public void MissingAdapterFolderIsABadInputError()
    {
        var (code, _, err) = Run("merge", "--model", Path.Combine(fixture.Dir, "base"), "--adapter", "/nonexistent/adapter", "--out", TestPaths.TempDir());
        Assert.Equal(2, code);
        Assert.Contains("/nonexistent/adapter: no adapter_config.json", err);
    }
}
