using static SharpTune.Tests.CliRunner;

namespace SharpTune.Tests.Training;

/// <summary>`train` prepares its data itself, so it takes prepare's --skip-bad-rows: without it a malformed row stops the run (exit 2, nothing written); with it the row is skipped, counted, and training runs.</summary>
public sealed class TrainSkipBadRowsTests
{
    [Fact]
    public void TrainSkipsAndCountsMalformedRowsOnlyWhenAsked()
    {
        string dir = TestPaths.TempDir();
        string data = Path.Combine(dir, "rows.jsonl");
        var good = File.ReadLines(Path.Combine(TestPaths.RepoRoot, "examples", "data", "reverse.jsonl")).Take(40).ToList();
        // Line 11 is not JSON, line 21 has a number where the reply text belongs.
        good.Insert(10, "{\"messages\": oops}");
        good.Insert(20, "{\"messages\": [{\"role\": \"user\", \"content\": \"Reverse: abcd\"}, {\"role\": \"assistant\", \"content\": 7}]}");
        File.WriteAllLines(data, good);
        string output = Path.Combine(dir, "out");
        string[] args = ["train", Path.Combine(TestPaths.RepoRoot, "examples", "quickstart.yaml"), "--set", $"datasets.0.path={data}",
            .. RunSafetyTests.Settings(output, 1), "--set", "save_steps=null"];

        var strict = Run(args);
        Assert.Equal(2, strict.Code);
        Assert.Matches($@"^error: {System.Text.RegularExpressions.Regex.Escape(data)}:11: not valid JSON at byte 14 of the line .*\n$", strict.Err);
        Assert.False(Directory.Exists(output));

        var skipping = Run([.. args, "--skip-bad-rows"]);
        Assert.True(skipping.Code == 0, skipping.Err + skipping.Out);
        Assert.Contains($"datasets[0] ({data}): skipped 2 malformed row(s) of 42; first: {data}:11: not valid JSON at byte 14 of the line", skipping.Err);
        Assert.Contains("data: 40 train rows, 0 eval rows", skipping.Out);
        Assert.Matches(@"(?m)^done: 1 steps, final loss \d+\.\d{4}; saved to ", skipping.Out);
    }
}
