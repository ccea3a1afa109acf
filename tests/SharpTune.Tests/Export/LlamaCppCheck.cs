using System.Diagnostics;
using System.Text.Json.Nodes;

namespace SharpTune.Tests.Export;

/// <summary>
/// Runs tools/gguf-check/check.mjs: llama.cpp (node-llama-cpp 3.21.1's prebuilt binaries) and @huggingface/gguf read
/// GGUF files. Skips without node or the folder's node_modules (tools/install-test-deps.sh installs them); fails under CI=true.
/// </summary>
internal static class LlamaCppCheck
{
    private static string ScriptDir => Path.Combine(TestPaths.RepoRoot, "tools", "gguf-check");

    public static void RequireTools()
    {
        var node = FindNode();
        TestPaths.Require(node != null, "node is not on PATH (install Node.js; tools/install-test-deps.sh says how)");
        TestPaths.Require(Directory.Exists(Path.Combine(ScriptDir, "node_modules", "node-llama-cpp")) && Directory.Exists(Path.Combine(ScriptDir, "node_modules", "@huggingface", "gguf")),
            "tools/gguf-check/node_modules is missing (run tools/install-test-deps.sh)");
    }

    /// <summary>One result per request: metadata, tensors, greedy ids, per-step top log-probs, perplexity, textTokens.</summary>
    public static JsonArray Run(JsonArray requests)
    {
        RequireTools();
        var requestPath = Path.Combine(TestPaths.TempDir(), "requests.json");
        File.WriteAllText(requestPath, requests.ToJsonString());
        var start = new ProcessStartInfo(FindNode()!, $"check.mjs \"{requestPath}\"") { WorkingDirectory = ScriptDir, RedirectStandardOutput = true, RedirectStandardError = true };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3))) process.Kill(entireProcessTree: true);
        var output = stdout.Result.Trim();
        Assert.True(process.ExitCode == 0, $"check.mjs failed: {stderr.Result}");
        return (JsonArray)JsonNode.Parse(output.Split('\n')[^1])!;
    }

    public static JsonObject Request(string model, long[] prompt, int maxNewTokens, long[]? perplexityIds = null, string? text = null, int contextSize = 128)
    {
        var request = new JsonObject
        {
            ["model"] = model,
            ["prompt"] = new JsonArray(prompt.Select(p => (JsonNode)p).ToArray()),
            ["maxNewTokens"] = maxNewTokens,
            ["contextSize"] = contextSize,
        };
        if (perplexityIds is not null) request["perplexityIds"] = new JsonArray(perplexityIds.Select(p => (JsonNode)p).ToArray());
        if (text is not null) request["text"] = text;
        return request;
    }

    public static long[] Ids(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<long>()).ToArray();

    private static string? FindNode() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, "node")).FirstOrDefault(File.Exists);
}
