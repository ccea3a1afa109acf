using SharpTune.Inference;

namespace SharpTune.Tests.Inference;

public sealed class ChatSessionTests(TextModelFixture fixture) : IClassFixture<TextModelFixture>
{
    private static TextGenerationOptions Options => new() { Sampling = new GenerationOptions { MaxNewTokens = 6 } };

    [Fact]
    public void HistoryGrowsAndTheTemplateSeesEveryTurn()
    {
        lock (fixture.Gate)
        {
            var session = new ChatSession(fixture.Generator, Options, "You are terse.");
            var first = session.Send("Hello");
            Assert.Equal(["system", "user", "assistant"], session.History.Select(m => m.Role));
            Assert.Equal(first.Text, session.History[2].Content);
            var second = session.Send("And again?");
            Assert.Equal(5, session.History.Count);
            // The second prompt is the template over all five messages so far (minus the new reply).
            var expectedPrompt = fixture.Generator.EncodeChat(session.History.Take(4).ToArray());
            Assert.Equal(expectedPrompt.Count, second.PromptTokens);
            session.Reset();
            Assert.Equal([new ChatMessage("system", "You are terse.")], session.History);
        }
    }

    [Fact]
    public void LoopHandlesResetExitAndErrorsFromStdin()
    {
        var longLine = string.Join(" ", Enumerable.Repeat("word", 300));
        var input = new StringReader($"Hi there\n\n/reset\n{longLine}\nSecond\n/exit\nnever read\n");
        var output = new StringWriter();
        var errors = new StringWriter();
        int turns;
        string expectedReply;
        lock (fixture.Gate)
        {
            var session = new ChatSession(fixture.Generator, Options);
            turns = session.RunLoop(input, output, errors);
            Assert.Equal(["user", "assistant"], session.History.Select(m => m.Role));
            Assert.Equal("Second", session.History[0].Content);
            expectedReply = new ChatSession(fixture.Generator, Options).Send("Hi there").Text;
        }
        Assert.Equal(2, turns);
        var text = output.ToString();
        Assert.Contains("(history cleared)", text);
        Assert.Contains("> " + expectedReply + Environment.NewLine, text);
        var errorLines = errors.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["(reply cut at 6 tokens)", "(reply cut at 6 tokens)"], errorLines.Where(l => l.StartsWith('(')));
        var tooLong = Assert.Single(errorLines, l => l.StartsWith("error: "));
        Assert.Matches(@"^error: prompt: 3\d\d tokens do not fit the model's context of 256 tokens", tooLong);
        Assert.Equal("never read\n", input.ReadToEnd());
    }
}
