using System.Diagnostics;
using System.Text.Json.Nodes;
using SharpTune.Serving;
using SharpTune.Tests.Inference;

namespace SharpTune.Tests.Serving;

/// <summary>
/// Runs tools/openai-client-test/test.mjs (the official openai npm client) against a real server. It needs
/// `npm ci` in that folder (tools/install-test-deps.sh does it); without node_modules or node the test is skipped,
/// and under CI=true it fails.
/// </summary>
public sealed class OpenAiClientScriptTests(TextModelFixture fixture) : IClassFixture<TextModelFixture>
{
    private static string ScriptDir => Path.Combine(TestPaths.RepoRoot, "tools", "openai-client-test");

    [SkippableFact]
    public async Task OfficialClientPassesChatStreamAndErrorChecks()
    {
        var node = FindNode();
        TestPaths.Require(node != null, "node is not on PATH (install Node.js; tools/install-test-deps.sh says how)");
        TestPaths.Require(Directory.Exists(Path.Combine(ScriptDir, "node_modules", "openai")),
            "tools/openai-client-test/node_modules is missing (run tools/install-test-deps.sh)");
        await using var server = new OpenAiServer(fixture.Generator, new ServerOptions { Port = 0, ApiKey = "script-key", ModelId = "tiny-llama3" });
        await server.StartAsync();
        var start = new ProcessStartInfo(node!, "test.mjs") { WorkingDirectory = ScriptDir, RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["OPENAI_BASE_URL"] = new Uri(server.Address, "v1").ToString();
        start.Environment["OPENAI_API_KEY"] = "script-key";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await process.WaitForExitAsync(timeout.Token);
        var output = (await stdout).Trim();
        Assert.True(process.ExitCode == 0, output + await stderr);
        var result = JsonNode.Parse(output.Split('\n')[^1])!;
        Assert.True(result["ok"]!.GetValue<bool>());
        Assert.Equal("tiny-llama3", result["model"]!.GetValue<string>());
        Assert.Equal(result["chat"]!.GetValue<string>(), result["stream"]!.GetValue<string>());
        Assert.Equal(20, result["parallel"]!.GetValue<int>());
        Assert.StartsWith("This model's maximum context length is 256 tokens", result["too_long_message"]!.GetValue<string>().Replace("400 ", ""));
    }

    private static string? FindNode() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, "node")).FirstOrDefault(File.Exists);
}
