using SharpTune.Config;
using SharpTune.Training;

namespace SharpTune.Tests.Training;

/// <summary>Built-in GRPO rewards and the external reward command (JSON lines in, one number per line out).</summary>
public sealed class RewardTests
{
    private static RewardInput In(string completion, string row = """{"answer": "42"}""", int tokens = 5) => new("Q?", completion, tokens, row);

    private static double[] Score(IRewardFunction f, params RewardInput[] inputs) => f.Score(inputs);

    [Fact]
    public void ExactMatchExtractsTheFinalAnswer()
    {
        var auto = new ExactMatchReward("answer", AnswerExtraction.Auto);
        Assert.Equal([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0],
            Score(auto, In("so <answer> 42 </answer>"), In(@"thus \boxed{42}."), In("6*7\n#### 42"), In("6 times 7 is 42."),
                In("42 or 41, final 41"), In("It is 1,000.", """{"answer": "#### 1000"}"""), In("<answer>41</answer> 42")));
        var text = new ExactMatchReward("answer", AnswerExtraction.Auto);
        Assert.Equal([1.0, 0.0], Score(text, In("  dcba \n", """{"answer": "dcba"}"""), In("dcbaa", """{"answer": "dcba"}""")));
        Assert.Equal([0.0], Score(new ExactMatchReward("answer", AnswerExtraction.AnswerTag), In("42")));
        Assert.Equal([1.0], Score(new ExactMatchReward("answer", AnswerExtraction.Boxed), In(@"\boxed{\frac{1}{2}}", """{"answer": "\\frac{1}{2}"}""")));
        Assert.Equal([1.0], Score(new ExactMatchReward("answer", AnswerExtraction.LastNumber), In("<answer>x</answer> 42.0")));
        Assert.Equal([1.0], Score(new ExactMatchReward("solution", AnswerExtraction.Full), In("7", """{"solution": 7}""")));
        var missing = Assert.Throws<InvalidInputException>(() => Score(new ExactMatchReward("solution", AnswerExtraction.Auto), In("7")));
        Assert.Contains("\"solution\"", missing.Message);
        Assert.Contains("reward_answer_field", missing.Message);
    }

    [Fact]
    public void FormatRegexJsonAndLengthRewards()
    {
        Assert.Equal([1.0, 0.0], Score(new RegexReward(@"[a-z]{4}"), In("abcd"), In("abcd!")));
        var tags = new TagFormatReward(["think", "answer"]);
        Assert.Equal([1.0, 0.0, 0.0, 0.0],
            Score(tags, In("<think>a\nb</think>\n<answer>4</answer>\n"), In("<answer>4</answer><think>a</think>"),
                In("x <think>a</think><answer>4</answer>"), In("<think>a</think><think>b</think><answer>4</answer>")));
        var think = new ThinkFormatReward();
        Assert.Equal([1.0, 0.0, 0.0], Score(think, In("<think>\nok\n</think>\nrest"), In("<think>a<think>b</think>"), In("no <think>a</think>")));
        Assert.Equal([1.0, 1.0, 0.0, 0.0], Score(new JsonValidReward(), In(""" {"a": [1, 2]} """), In("```json\n{\"a\": 1}\n```"), In("{a: 1}"), In("")));
        // max 10, cache 4: free up to 6 tokens, then (6 − L) / 4, −1 beyond 10.
        var length = new LengthPenaltyReward(10, 4);
        Assert.Equal([0.0, -0.25, -1.0, -1.0], Score(length, In("", tokens: 6), In("", tokens: 7), In("", tokens: 10), In("", tokens: 11)));
        // Weighted sum skips a function's NaN (TRL's None): [1·1 + 2·1, 1·0 + (skipped)].
        Assert.Equal([3.0, 0.0], RewardFunctions.Weighted([[1, 0], [1, double.NaN]], [1, 2]));
    }

    private static string Script(string body)
    {
        var path = Path.Combine(TestPaths.TempDir(), "score.sh");
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    [SkippableFact]
    public void RewardCommandScoresJsonLinesAndFailsWithOneLineNamingIt()
    {
        Skip.IfNot(File.Exists("/bin/sh"), "needs /bin/sh");
        // Reward = length of the completion text, read from the JSON lines (one per completion, in order), and null → NaN.
        var counting = Script("""while IFS= read -r line; do case "$line" in *'"completion":"skip"'*) echo null;; *) echo "$line" | sed 's/.*"completion_tokens":\([0-9]*\).*/\1/';; esac; done""");
        var command = new RewardCommand(counting, Path.GetDirectoryName(counting)!, TimeSpan.FromSeconds(20));
        var scores = command.Score([In("a", tokens: 3), In("skip", tokens: 4), In("c", tokens: 9)]);
        Assert.Equal(3.0, scores[0]);
        Assert.True(double.IsNaN(scores[1]));
        Assert.Equal(9.0, scores[2]);

        var wrongCount = new RewardCommand(Script("cat > /dev/null; echo 1"), TestPaths.TempDir(), TimeSpan.FromSeconds(20));
        var e = Assert.Throws<InvalidInputException>(() => wrongCount.Score([In("a"), In("b")]));
        Assert.Matches(@"^reward_command .*score\.sh: printed 1 line\(s\) for 2 completions; expected one number per line$", e.Message);

        var failing = new RewardCommand(Script("cat > /dev/null; echo 'no model here' >&2; exit 3"), TestPaths.TempDir(), TimeSpan.FromSeconds(20));
        e = Assert.Throws<InvalidInputException>(() => failing.Score([In("a")]));
        Assert.EndsWith("exited with code 3: no model here", e.Message);

        var notNumber = new RewardCommand(Script("cat > /dev/null; echo 0.5; echo abc"), TestPaths.TempDir(), TimeSpan.FromSeconds(20));
        e = Assert.Throws<InvalidInputException>(() => notNumber.Score([In("a"), In("b")]));
        Assert.Contains("line 2 of its output is 'abc'; expected a number", e.Message);

        var slow = new RewardCommand("sleep 5", TestPaths.TempDir(), TimeSpan.FromSeconds(0.5));
        e = Assert.Throws<InvalidInputException>(() => slow.Score([In("a")]));
        Assert.Equal("reward_command sleep 5: did not finish within 0.5 s for 1 completions (reward_command_timeout)", e.Message);
    }
}
