using SharpTune.Inference;
using SharpTune.Tests.Tokenization;

namespace SharpTune.Tests.Inference;

public sealed class StreamingDetokenizerTests(TokenizerData data) : IClassFixture<TokenizerData>
{
    [Fact]
    public void PiecesConcatenateToTheTextAndStopAtTheStopString()
    {
        var tokenizer = data.Tokenizer("llama3");
        var ids = tokenizer.Encode("Hello world. The answer is 42.\nUser: next", addSpecialTokens: false);
        var stream = new StreamingDetokenizer(tokenizer, ["\nUser:"]);
        var pieces = new List<string>();
        int pushed = 0;
        foreach (var id in ids)
        {
            pieces.Add(stream.Push(id));
            pushed++;
            if (stream.StopHit) break;
        }
        pieces.Add(stream.Finish());
        Assert.True(stream.StopHit);
        Assert.Equal("Hello world. The answer is 42.", stream.Text);
        Assert.Equal(stream.Text, string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\n'));
        Assert.Equal(tokenizer.Encode("Hello world. The answer is 42.\nUser:", addSpecialTokens: false).Count, pushed);
    }

    [Fact]
    public void MultiByteCharactersAreHeldBackUntilComplete()
    {
        var tokenizer = data.Tokenizer("llama3");
        // "🙂" is split into byte tokens by Llama 3's BPE; no piece may show a half character.
        var ids = tokenizer.Encode("ok 🙂🙂 done", addSpecialTokens: false);
        var stream = new StreamingDetokenizer(tokenizer, []);
        var pieces = ids.Select(id => stream.Push(id)).Append(stream.Finish()).ToList();
        Assert.Equal("ok 🙂🙂 done", string.Concat(pieces));
        Assert.DoesNotContain(pieces, p => p.Contains('\uFFFD'));
    }

    [Fact]
    public void SpecialTokensAreNotPartOfTheText()
    {
        var tokenizer = data.Tokenizer("llama3");
        var stream = new StreamingDetokenizer(tokenizer, []);
        foreach (var id in tokenizer.Encode("Hi", addSpecialTokens: false)) stream.Push(id);
        stream.Push(tokenizer.TokenToId("<|eot_id|>")!.Value);
        Assert.Equal("Hi", stream.Text + stream.Finish());
    }
}
