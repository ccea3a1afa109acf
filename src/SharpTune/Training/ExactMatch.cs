using SharpTune.Data;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Tokenization;

namespace SharpTune.Training;

public sealed record ExactMatchSample(string Prompt, string Generated, string Expected);
public sealed record ExactMatchResult(int Correct, int Total, ExactMatchSample? Sample);

/// <summary>
/// Held-out accuracy for supervised rows: the prompt is every token before the first labelled one, the answer is
/// the first labelled span; a row counts when greedy decoding reproduces that span token for token.
/// </summary>
public static class ExactMatch
{
    public static ExactMatchResult Evaluate(CausalLM model, HfTokenizer tokenizer, IReadOnlyList<TokenizedExample> examples)
    {
        var eos = model.Config.EosTokenIds.Select(e => (long)e).Concat(tokenizer.EosTokenId is { } e2 ? [(long)e2] : []).Distinct().ToArray();
        int correct = 0, total = 0;
        ExactMatchSample? sample = null;
        foreach (var example in examples)
        {
            int start = Array.FindIndex(example.Labels, l => l != TokenLabels.IgnoreIndex);
            if (start <= 0) continue;
            int end = start;
            while (end < example.Labels.Length && example.Labels[end] != TokenLabels.IgnoreIndex) end++;
            var prompt = example.InputIds[..start].Select(i => (long)i).ToArray();
            var expected = example.InputIds[start..end].Select(i => (long)i).ToArray();
            var generated = TokenGenerator.Generate(model, prompt, new GenerationOptions { MaxNewTokens = expected.Length, EosTokenIds = eos });
            total++;
            if (generated.SequenceEqual(expected)) correct++;
            sample ??= new ExactMatchSample(
                tokenizer.Decode(prompt.Select(i => (int)i), skipSpecialTokens: true),
                tokenizer.Decode(generated.Select(i => (int)i), skipSpecialTokens: true),
                tokenizer.Decode(expected.Select(i => (int)i), skipSpecialTokens: true));
        }
        return new ExactMatchResult(correct, total, sample);
    }
}
