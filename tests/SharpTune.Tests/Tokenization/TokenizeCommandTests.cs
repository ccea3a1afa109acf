using System.Text.Json;

namespace SharpTune.Tests.Tokenization;

public sealed class TokenizeCommandTests
{
    private static readonly string Qwen3 = Path.Combine(TokenizerData.DataDir, "tokenizers", "qwen3");
    private static readonly string Llama2 = Path.Combine(TokenizerData.DataDir, "tokenizers", "llama2");

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = SharpTune.Cli.Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public void TextIsWrittenAsIdsTokensAndOffsets()
    {
        var output = Path.Combine(TestPaths.TempDir(), "out.json");
        var (code, stdout, stderr) = Run("tokenize", "--tokenizer", Llama2, "--text", "Hello world", "--output", output);
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        Assert.Contains("1 row(s), 3 tokens", stdout);
        var json = JsonDocument.Parse(File.ReadAllText(output)).RootElement;
        Assert.Equal("[[1,22557,1526]]", json.GetProperty("input_ids").GetRawText());
        Assert.Equal("[[\"<s>\",\"▁Hello\",\"▁world\"]]", json.GetProperty("tokens").GetRawText());
        Assert.Equal("[[[0,0],[0,5],[5,11]]]", json.GetProperty("offsets").GetRawText());

        Run("tokenize", "--tokenizer", Llama2, "--text", "Hello world", "--no-special-tokens", "--output", output);
        Assert.Equal("[[22557,1526]]", JsonDocument.Parse(File.ReadAllText(output)).RootElement.GetProperty("input_ids").GetRawText());
    }

    [Fact]
    public void ChatRowsGoThroughTheTemplate()
    {
        var dir = TestPaths.TempDir();
        var input = Path.Combine(dir, "rows.jsonl");
        File.WriteAllLines(input,
        [
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Hi\"}, {\"role\": \"assistant\", \"content\": \"Hello\"}]}",
            "",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"Again\"}], \"enable_thinking\": false}",
        ]);
        var output = Path.Combine(dir, "out.json");
        var (code, _, stderr) = Run("tokenize", "--tokenizer", Qwen3, "--input", input, "--chat", "--output", output);
        Assert.True(code == 0, stderr);
        var json = JsonDocument.Parse(File.ReadAllText(output)).RootElement;
        Assert.Equal("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello<|im_end|>\n", json.GetProperty("texts")[0].GetString());
        var ids = json.GetProperty("input_ids")[0].EnumerateArray().Select(x => x.GetInt32()).ToArray();
        Assert.Equal([151644, 872, 198, 13048, 151645, 198, 151644, 77091, 198, 151667, 271, 151668, 271, 9707, 151645, 198], ids);
        Assert.Equal(2, json.GetProperty("input_ids").GetArrayLength());
    }

    [Fact]
    public void BadRowsExitTwoNamingFileAndLineAndKeepTheOldOutput()
    {
        var dir = TestPaths.TempDir();
        var input = Path.Combine(dir, "rows.jsonl");
        File.WriteAllLines(input, ["{\"text\": \"fine\"}", "{\"prompt\": \"no text key\"}"]);
        var output = Path.Combine(dir, "out.json");
        File.WriteAllText(output, "previous");
        var (code, _, stderr) = Run("tokenize", "--tokenizer", Qwen3, "--input", input, "--output", output);
        Assert.Equal(2, code);
        Assert.Equal($"error: {input}:2: expected a JSON string or an object with a string \"text\"; found {{\"prompt\": \"no text key\"}} (use --chat for \"messages\" rows)", stderr.Trim());
        Assert.Equal("previous", File.ReadAllText(output));

        var (missing, _, missingErr) = Run("tokenize", "--tokenizer", Path.Combine(dir, "nope"), "--text", "x", "--output", output);
        Assert.Equal(2, missing);
        Assert.Equal($"error: {Path.Combine(dir, "nope")}: tokenizer directory not found", missingErr.Trim());
    }
}
