using System.Diagnostics;
using static SharpTune.Tests.ConfigTests.ConfigTestKit;

namespace SharpTune.Tests.ConfigTests;

/// <summary>
/// Configs a hostile or careless user writes: each stops `validate` with exit 2 and one exact line naming the file, the
/// place and what is allowed, quickly and in bounded memory, and leaves the folder as it was.
/// </summary>
public sealed class HostileConfigTests
{
    /// <summary>Names, sizes and write times of everything under a folder: equal before and after means nothing changed.</summary>
    internal static string Snapshot(string dir) => string.Join("\n", Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
        .Select(p => File.Exists(p) ? $"{p} {new FileInfo(p).Length} {File.GetLastWriteTimeUtc(p):O}" : $"{p}/"));

    private static (int Exit, string Out, string Err) ValidateUnchanged(string path, params string[] extra)
    {
        string dir = Path.GetDirectoryName(path)!;
        string before = Snapshot(dir);
        var result = RunCli(["validate", path, .. extra]);
        Assert.Equal(before, Snapshot(dir));
        return result;
    }

    public static TheoryData<string, string> YamlCases => new()
    {
        // The tab is on line 5; the parser itself would blame line 4.
        { "base_model: org/model\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n\tlearning_rate: 1\n", "5:1: YAML syntax error: a tab in the indentation; YAML indents with spaces only" },
        { "base_model: org/model\nlora_target_modules: [q_proj, v_proj\nmicro_batch_size: 2\n", "2:22: YAML syntax error: this '[' is never closed; expected ',' or ']'" },
        { "base_model: org/model\nseed: \"42\n", "2:7: YAML syntax error: While scanning a quoted scalar, found unexpected end of stream." },
        { "base_model: org/model\nbase_model: other/model\n", "2:1: key 'base_model' appears twice in the same mapping; give it once" },
        { "a: 1\n---\nb: 2\n", "2:1: a second YAML document (---); expected one" },
        { "lr: *missing\n", "1:5: alias *missing names no anchor defined before it" },
    };

    [Theory]
    [MemberData(nameof(YamlCases))]
    public void YamlErrorsNameLineColumnAndWhatWasExpected(string yaml, string expected)
    {
        string path = Write(yaml);
        var (exit, stdout, err) = ValidateUnchanged(path);
        Assert.Equal($"error: {path}:{expected}\n", err);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
    }

    [Fact]
    public void AnAliasBombIsRefusedQuicklyInBoundedMemory()
    {
        // Nine aliases per level, six levels: 9^6 ≈ 531,000 values (billions with a few more levels) from 300 bytes.
        var lines = new List<string> { "l0: &l0 [x, x, x, x, x, x, x, x, x]" };
        for (int level = 1; level <= 6; level++) lines.Add($"l{level}: &l{level} [{string.Join(", ", Enumerable.Repeat($"*l{level - 1}", 9))}]");
        string path = Write(string.Join("\n", lines) + "\n");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        var (exit, _, err) = ValidateUnchanged(path);
        clock.Stop();
        Assert.Equal($"error: {path}:6:10: the document expands to more than 100000 values (aliases repeating aliases?); a config needs far fewer\n", err);
        Assert.Equal(2, exit);
        // The shared alias nodes are never copied: the whole parse allocates a few MB at most.
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64L << 20, $"allocated {(GC.GetAllocatedBytesForCurrentThread() - before) >> 20} MiB");
    }

    [Fact]
    public void TwentyThousandNestedBracketsStopAtTheDepthLimitWithoutAStackOverflow()
    {
        string path = Write("a: " + new string('[', 20_000) + new string(']', 20_000) + "\n");
        var (exit, _, err) = ValidateUnchanged(path);
        // The root mapping is level 1; the 64th '[' (column 3 + 64) is level 65.
        Assert.Equal($"error: {path}:1:67: nested deeper than 64 levels; a config needs only a few\n", err);
        Assert.Equal(2, exit);
        string json = Write("{\"a\": " + new string('[', 20_000) + new string(']', 20_000) + "}", "deep.json");
        var (jsonExit, _, jsonErr) = ValidateUnchanged(json);
        Assert.Equal(2, jsonExit);
        Assert.StartsWith($"error: {json}:1:", jsonErr);
        Assert.Contains("maximum configured depth of 64", jsonErr);
    }

    [Fact]
    public void AConfigOverFourMebibytesIsRefusedBeforeParsing()
    {
        string path = Write("base_model: org/model\n# " + new string('x', 5 << 20) + "\n");
        var (exit, _, err) = ValidateUnchanged(path);
        Assert.Equal($"error: {path}: {new FileInfo(path).Length} bytes; a config is at most 4 MiB (is this a data file?)\n", err);
        Assert.Equal(2, exit);
    }

    public static TheoryData<string, string> RangeCases => new()
    {
        { Minimal + "num_epochs: 1e308\n", "num_epochs: 1e308 is invalid; expected a number in [0, 100000]" },
        { Minimal + "max_steps: -5\n", "max_steps: -5 is invalid; expected an integer ≥ -1" },
        { Minimal + "max_steps: 3000000000\n", "max_steps: 3000000000 is invalid; expected an integer ≥ -1" },
        { Minimal + "sequence_len: 1e12\n", "sequence_len: 1e12 is invalid; expected an integer ≥ 1" },
        { Minimal + "merge_into_original: ./base\nadapter: lora\nlora_r: 8\nmerge_lora: true\n",
            "merge_into_original is set but adapter is lora; it names the full-precision model a QLoRA adapter merges into: expected adapter: qlora with merge_lora: true, or remove it" },
        { Minimal + "merge_into_original: ./base\n",
            "merge_into_original is set but adapter is null; it names the full-precision model a QLoRA adapter merges into: expected adapter: qlora with merge_lora: true, or remove it" },
        { Minimal + "merge_into_original: ./base\nadapter: qlora\nlora_r: 8\n",
            "merge_into_original is set but merge_lora is false; expected merge_lora: true (it says where the adapter is merged), or remove it" },
        { Minimal + "lerning_rate: 0.001\n",
            "unknown key 'lerning_rate' (did you mean 'learning_rate'?); remove it, or set strict: false to accept unknown keys" },
    };

    [Theory]
    [MemberData(nameof(RangeCases))]
    public void OutOfRangeAndMisspelledKeysAreRefused(string yaml, string expected)
    {
        string path = Write(yaml);
        var (exit, stdout, err) = ValidateUnchanged(path);
        Assert.Equal($"error: {path}: {expected}\n", err);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
    }

    [Fact]
    public void AMisspelledKeyIsAnErrorInTheFileAndThroughSetAndOnlyAWarningUnderStrictFalse()
    {
        string path = Write(Minimal);
        var (setExit, _, setErr) = ValidateUnchanged(path, "--set", "lerning_rate=0.001");
        Assert.Equal("error: --set lerning_rate=0.001: unknown key 'lerning_rate' (did you mean 'learning_rate'?)\n", setErr);
        Assert.Equal(2, setExit);
        string lenient = Write(Minimal + "strict: false\nlerning_rate: 0.001\n");
        var (exit, stdout, err) = ValidateUnchanged(lenient);
        Assert.Equal(0, exit);
        Assert.Equal($"warning: {lenient}: unknown key 'lerning_rate' (did you mean 'learning_rate'?)\n", err);
        Assert.EndsWith("config OK\n", stdout);
    }

    [Fact]
    public void AnOutputDirThatIsAFileIsRefusedByName()
    {
        string path = Write(Minimal + "output_dir: afile.txt\n");
        string file = Path.Combine(Path.GetDirectoryName(path)!, "afile.txt");
        File.WriteAllText(file, "keep me");
        var (exit, _, err) = ValidateUnchanged(path);
        Assert.Equal($"error: {path}: output_dir: {file} is a file; expected a folder to write into (a new one, or one of an earlier run)\n", err);
        Assert.Equal(2, exit);
        var (nestedExit, _, nestedErr) = ValidateUnchanged(path, "--set", "output_dir=afile.txt/run");
        Assert.Equal($"error: {path}: output_dir: {file}/run cannot be created: {file} is a file; expected a path of folders\n", nestedErr);
        Assert.Equal(2, nestedExit);
        Assert.Equal("keep me", File.ReadAllText(file));
    }

    [Fact]
    public void AnOutputDirThatIsTheBaseModelFolderIsRefused()
    {
        string path = Write("base_model: ./m\noutput_dir: ./m\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n");
        string model = Path.Combine(Path.GetDirectoryName(path)!, "m");
        Directory.CreateDirectory(model);
        File.WriteAllText(Path.Combine(model, "config.json"), "{\"model_type\": \"llama\"}");
        var (exit, _, err) = ValidateUnchanged(path);
        Assert.Equal($"error: {path}: output_dir: {model} is the base_model folder; the run would overwrite what it starts from: choose another output_dir\n", err);
        Assert.Equal(2, exit);
    }
}
