using static SharpTune.Tests.CliRunner;
namespace SharpTune.Tests.Cli;

public sealed class CliUsageTests
{

    [Fact]
    public void MissingRequiredOptionIsBadUsageWithExitCode2()
    {
        var (code, _, err) = Run("generate", "--prompt-ids", "1,2");
        Assert.Equal(2, code);
        Assert.Contains("error: Option '--model' is required.", err);
    }

    [Fact]
    public void UnknownCommandIsBadUsageWithExitCode2()
    {
        var (code, _, err) = Run("trian", "x.yaml");
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", err);
    }

    [Fact]
    public void HelpListsTheCommandsAndExitsZero()
    {
        var (code, output, _) = Run("--help");
        Assert.Equal(0, code);
        Assert.Contains("Usage:\n  sharptune [command] [options]", output.Replace("\r\n", "\n"));
        foreach (var command in new[] { "train", "validate", "prepare", "score", "generate", "merge", "init-model", "tokenize", "serve", "chat", "eval", "download", "push" })
            Assert.Contains("  " + command, output);
    }
}
