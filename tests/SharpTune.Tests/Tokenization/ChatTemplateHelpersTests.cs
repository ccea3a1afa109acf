using SharpTune.Tokenization;

namespace SharpTune.Tests.Tokenization;

public sealed class ChatTemplateHelpersTests(TokenizerData data) : IClassFixture<TokenizerData>
{
    private static List<IReadOnlyDictionary<string, object?>> Conversation(params (string Role, string Content)[] turns) =>
        turns.Select(t => (IReadOnlyDictionary<string, object?>)new Dictionary<string, object?> { ["role"] = t.Role, ["content"] = t.Content }).ToList();

    [Theory]
    [InlineData("llama2", "llama2")]
    [InlineData("phi3", "phi3")]
    [InlineData("mistral", "mistral")]
    public void BuiltInTemplatesAreTheOnesTheReferenceTestsCheck(string builtIn, string file)
    {
        var tested = File.ReadAllText(Path.Combine(TokenizerData.DataDir, "templates", file + ".jinja"));
        Assert.Equal(tested.TrimEnd('\n'), BuiltInChatTemplates.Get(builtIn).TrimEnd('\n'));
    }

    [Fact]
    public void BuiltInChatMlAndAlpacaRender()
    {
        var messages = Conversation(("system", "S"), ("user", "Q"), ("assistant", "A"));
        var variables = new Dictionary<string, object?> { ["messages"] = messages, ["add_generation_prompt"] = false, ["eos_token"] = "</s>", ["bos_token"] = "<s>" };
        Assert.Equal("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n",
            new ChatTemplate(BuiltInChatTemplates.Get("chatml")).Render(variables));
        // axolotl's alpaca template.
        Assert.Equal("<s>S\n\n### Instruction:\nQ\n\n### Response:\nA</s>", new ChatTemplate(BuiltInChatTemplates.Get("alpaca")).Render(variables));
        var e = Assert.Throws<InvalidInputException>(() => BuiltInChatTemplates.Get("vicuna"));
        Assert.Equal("chat_template: 'vicuna' is not a chat template name; expected one of " + BuiltInChatTemplates.AllowedText, e.Message);
    }

    [Fact]
    public void AssistantSpansCoverEachAnswerAndItsEndOfTurn()
    {
        var qwen3 = data.Tokenizer("qwen3");
        var messages = Conversation(("user", "Hi"), ("assistant", "Hello"), ("user", "Bye"), ("assistant", "Later"));
        var render = AssistantSpans.Render(qwen3, messages, templateOverride: BuiltInChatTemplates.ChatMl);
        Assert.Equal(["Hello<|im_end|>\n", "Later<|im_end|>\n"], render.AssistantSpans.Select(s => render.Text[s.Start..s.End]).ToArray());

        var encoding = AssistantSpans.Encode(qwen3, messages, templateOverride: BuiltInChatTemplates.ChatMl);
        var trained = encoding.Ids.Where((_, i) => encoding.AssistantMask[i]).ToArray();
        Assert.Equal("Hello<|im_end|>\nLater<|im_end|>\n", qwen3.Decode(trained));
    }

    [Fact]
    public void TemplatesThatRewriteEarlierTurnsAreReported()
    {
        // Qwen3 drops the reasoning of assistant turns before the last user query, so prefixes change.
        var messages = Conversation(("user", "Q1"), ("assistant", "<think>\nr1\n</think>\n\nA1"), ("user", "Q2"), ("assistant", "A2"));
        var e = Assert.Throws<InvalidInputException>(() => AssistantSpans.Render(data.Tokenizer("qwen3"), messages));
        Assert.StartsWith("messages[1]: the chat template renders earlier turns differently", e.Message);
    }
}
