using System.Text.Json.Nodes;
using SharpTune.Cli;
using SharpTune.Cli.Commands;

namespace SharpTune.Tests.Inference;

public sealed class CliInferenceTests(TextModelFixture fixture) : IClassFixture<TextModelFixture>
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void GenerateTextPromptStreamsTheSameTextAsTheLibrary()
    {
        string expected;
        lock (fixture.Gate)
        {
            var g = fixture.Generator;
            expected = g.Generate(g.EncodePrompt("Once upon a time"), new SharpTune.Inference.TextGenerationOptions { Sampling = new() { MaxNewTokens = 7 } }).Text;
        }
        var (code, stdout, stderr) = Run("generate", "--model", fixture.Dir, "--prompt", "Once upon a time", "--max-new-tokens", "7");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Equal(expected + Environment.NewLine, stdout);
        // A batch of two prompts prints one line per prompt, the first equal to the single run.
        var (batchCode, batchOut, _) = Run("generate", "--model", fixture.Dir, "--prompt", "Once upon a time", "--prompt", "Hi", "--max-new-tokens", "7", "--output-ids");
        Assert.Equal(0, batchCode);
        var rows = batchOut.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, rows.Length);
        Assert.Equal(7, JsonNode.Parse(rows[0])!.AsArray().Count);
    }

    [Fact]
    public void GenerateChatAndErrors()
    {
        var (code, stdout, _) = Run("generate", "--model", fixture.Dir, "--chat", "Hello", "--max-new-tokens", "4", "--output-ids");
        Assert.Equal(0, code);
        Assert.Equal(4, JsonNode.Parse(stdout)!.AsArray().Count);
        var (both, _, bothErr) = Run("generate", "--model", fixture.Dir, "--chat", "Hello", "--prompt", "x");
        Assert.Equal(2, both);
        Assert.Equal("error: generate: give exactly one of --prompt TEXT, --chat TEXT or --prompt-ids 1,2,3" + Environment.NewLine, bothErr);
        var (empty, _, emptyErr) = Run("generate", "--model", fixture.Dir, "--prompt", "");
        Assert.Equal(2, empty);
        Assert.Equal("error: prompt: empty; give some text" + Environment.NewLine, emptyErr);
        var (temp, _, tempErr) = Run("generate", "--model", fixture.Dir, "--prompt", "x", "--temperature", "-2");
        Assert.Equal(2, temp);
        Assert.Equal("error: temperature: -2 is invalid; expected a number ≥ 0" + Environment.NewLine, tempErr);
        var (bf16, bf16Out, _) = Run("generate", "--model", fixture.Dir, "--dtype", "bfloat16", "--device", "cpu", "--chat", "Hello", "--max-new-tokens", "4", "--output-ids");
        Assert.Equal(0, bf16);
        Assert.Equal(4, JsonNode.Parse(bf16Out)!.AsArray().Count);
        var (dtype, _, dtypeErr) = Run("generate", "--model", fixture.Dir, "--dtype", "int4", "--prompt", "x");
        Assert.Equal(2, dtype);
        Assert.Equal("error: --dtype: 'int4' is not a dtype; allowed: float32, bfloat16, float16" + Environment.NewLine, dtypeErr);
        var (device, _, deviceErr) = Run("generate", "--model", fixture.Dir, "--device", "gpu", "--prompt", "x");
        Assert.Equal(2, device);
        Assert.Equal("error: --device: 'gpu' is not a device; allowed: auto, cpu, cuda, cuda:N (N = 0, 1, ...)" + Environment.NewLine, deviceErr);
    }

    [Fact]
    public void ChatCommandReadsStdinLines()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var console = new CliConsole(stdout, stderr);
        var command = ChatCommand.Create(console, new StringReader("Hi\n/reset\n/exit\n"));
        int code = command.Parse(["--model", fixture.Dir, "--max-new-tokens", "3"]).Invoke();
        Assert.Equal(0, code);
        var lines = stdout.ToString().Split(Environment.NewLine);
        Assert.Equal("chat: type a message; /reset clears the history, /exit quits.", lines[0]);
        Assert.StartsWith("> ", lines[1]);
        Assert.Equal("> (history cleared)", lines[2]);
        Assert.Equal("> ", lines[3]);
    }

    [Fact]
    public void EvalCommandWritesJsonAndTable()
    {
        var dir = TestPaths.TempDir();
        var config = Path.Combine(dir, "eval.yaml");
        var evals = Path.Combine(TestPaths.RepoRoot, "examples", "evals");
        File.WriteAllText(config, $"""
            base_model: {fixture.Dir}
            datasets:
              - path: {Path.Combine(evals, "validation.jsonl")}
                type: completion
            sequence_len: 128
            output_dir: {Path.Combine(dir, "out")}
            """);
        var (code, stdout, stderr) = Run("eval", config, "--data", Path.Combine(evals, "validation.jsonl"),
            "--task", Path.Combine(evals, "animals_mc.jsonl"), "--task", Path.Combine(evals, "arithmetic_qa.jsonl"));
        Assert.True(code == 0, stderr);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "out", "eval_results.json")))!;
        double loss = json["validation"]!["loss"]!.GetValue<double>();
        Assert.InRange(loss, 1.0, 30.0);
        Assert.Equal(Math.Exp(loss), json["validation"]!["perplexity"]!.GetValue<double>(), 6);
        Assert.Equal(12, json["tasks"]!["animals_mc"]!["examples"]!.GetValue<int>());
        Assert.Equal("generation", json["tasks"]!["arithmetic_qa"]!["kind"]!.GetValue<string>());
        var table = stdout.Split(Environment.NewLine);
        Assert.Equal(["task", "metric", "value", "n"], table[0].Split('|').Select(c => c.Trim()));
        Assert.Contains(table, l => l.StartsWith("arithmetic_qa | exact_match |", StringComparison.Ordinal));
        var (noData, _, noDataErr) = Run("eval", config);
        Assert.Equal(2, noData);
        Assert.StartsWith($"error: {config}: nothing to evaluate", noDataErr);
    }
}
