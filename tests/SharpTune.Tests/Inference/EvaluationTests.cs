using SharpTune.Inference;
using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Tests.Inference;

public sealed class EvaluationTests(TextModelFixture fixture) : IClassFixture<TextModelFixture>
{
    private static string Evals(string file) => Path.Combine(TestPaths.RepoRoot, "examples", "evals", file);

    /// <summary>Sum of log p(token) over ids[from..], from one forward pass over the whole row (independent of Scorer).</summary>
    private double LogLikelihood(long[] ids, int from)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = fixture.Generator.Model.Forward(new ForwardBatch(tensor(ids, [1, ids.Length])));
        var logProbs = logits[0].log_softmax(-1).to(float64);
        double sum = 0;
        for (int t = from; t < ids.Length; t++) sum += logProbs[t - 1, ids[t]].item<double>();
        return sum;
    }

    [Fact]
    public void PerplexityIsTheExponentialOfTheMeanTokenLoss()
    {
        var texts = new[] { "The cat purrs. The dog barks.", "A short one." };
        var tokenizer = fixture.Generator.Tokenizer;
        double expectedSum = 0;
        long expectedTokens = 0;
        foreach (var text in texts)
        {
            var ids = tokenizer.Encode(text).Select(i => (long)i).ToArray();
            expectedSum += LogLikelihood(ids, 1);
            expectedTokens += ids.Length - 1;
        }
        PerplexityResult result;
        lock (fixture.Gate) result = new Evaluator(fixture.Generator.Model, tokenizer).Perplexity(texts, 512);
        Assert.Equal(expectedTokens, result.Tokens);
        Assert.Equal(-expectedSum / expectedTokens, result.Loss, 4);
        Assert.InRange(result.Perplexity / Math.Exp(-expectedSum / expectedTokens), 1 - 1e-5, 1 + 1e-5);
        Assert.Equal(2, result.Windows);
        // Windows of 4 tokens: a 9-token text gives windows of 4, 4 and 1 (dropped: nothing to predict).
        var windowed = new Evaluator(fixture.Generator.Model, tokenizer).Perplexity(["The cat purrs. The dog barks."], 4);
        int n = tokenizer.Encode("The cat purrs. The dog barks.").Count;
        Assert.Equal(n / 4 + (n % 4 >= 2 ? 1 : 0), windowed.Windows);
        Assert.Equal((n / 4) * 3 + (n % 4 >= 2 ? n % 4 - 1 : 0), windowed.Tokens);
    }

    [Fact]
    public void MultipleChoiceAccuracyAndByteNormalisedAccuracy()
    {
        var tokenizer = fixture.Generator.Tokenizer;
        var items = EvalTask.Load(Evals("animals_mc.jsonl")).MultipleChoice;
        int expectAcc = 0, expectNorm = 0;
        foreach (var item in items)
        {
            int contextLength = tokenizer.Encode(item.Context).Count;
            var lls = item.Choices.Select(c => LogLikelihood(tokenizer.Encode(item.Context + " " + c).Select(i => (long)i).ToArray(), contextLength)).ToArray();
            var norm = lls.Select((ll, i) => ll / System.Text.Encoding.UTF8.GetByteCount(item.Choices[i])).ToArray();
            if (Array.IndexOf(lls, lls.Max()) == item.Gold) expectAcc++;
            if (Array.IndexOf(norm, norm.Max()) == item.Gold) expectNorm++;
        }
        TaskResult result;
        lock (fixture.Gate) result = new Evaluator(fixture.Generator.Model, tokenizer, batchSize: 5).MultipleChoice("animals_mc", items);
        Assert.Equal(12, result.Examples);
        Assert.Equal(expectAcc / 12.0, result.Metrics["acc"], 12);
        Assert.Equal(expectNorm / 12.0, result.Metrics["acc_norm"], 12);
    }

    [Fact]
    public void ExactMatchComparesTrimmedGreedyOutputCutAtStop()
    {
        var generator = fixture.Generator;
        string produced;
        lock (fixture.Gate)
            produced = generator.Generate(generator.EncodePrompt("Add the two numbers.\n1 and 2\nAnswer:"),
                new TextGenerationOptions { Sampling = new GenerationOptions { MaxNewTokens = 8 }, StopStrings = ["\n"] }).Text;
        var items = new[]
        {
            new GenerationItem("Add the two numbers.\n1 and 2\nAnswer:", "  " + produced.Trim() + " ", ["\n"]),
            new GenerationItem("Add the two numbers.\n1 and 2\nAnswer:", produced.Trim() + "x", ["\n"]),
        };
        TaskResult result;
        lock (fixture.Gate) result = new Evaluator(generator.Model, generator.Tokenizer).ExactMatch("em", items, maxNewTokens: 8);
        Assert.Equal(0.5, result.Metrics["exact_match"]);
    }

    [Fact]
    public void BundledEvalSetsLoadWithTheirKinds()
    {
        var mc = EvalTask.Load(Evals("arithmetic_mc.jsonl"));
        Assert.Equal(("arithmetic_mc", "multiple_choice", 24), (mc.Name, mc.Kind, mc.MultipleChoice.Count));
        Assert.All(mc.MultipleChoice, i => Assert.Equal(4, i.Choices.Count));
        var qa = EvalTask.Load(Evals("arithmetic_qa.jsonl"));
        Assert.Equal(("generation", 16), (qa.Kind, qa.Generation.Count));
        Assert.Equal(["\n", "."], qa.Generation[0].Stop);
        Assert.Equal(12, EvalData.ReadTexts(Evals("validation.jsonl")).Count);
    }

    [Fact]
    public void BadTaskRowsNameFileLineAndValue()
    {
        var dir = TestPaths.TempDir();
        var path = Path.Combine(dir, "bad.jsonl");
        File.WriteAllText(path, "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n{\"context\": \"y\", \"choices\": [\"a\", \"b\"], \"gold\": 2}\n");
        Assert.Equal($"{path}:2: \"gold\" must be an index in [0, 1]", Assert.Throws<InvalidInputException>(() => EvalTask.Load(path)).Message);
        File.WriteAllText(path, "{\"question\": \"x\"}\n");
        Assert.Equal($"{path}:1: row has neither \"choices\" (multiple choice) nor \"answer\" (generation)", Assert.Throws<InvalidInputException>(() => EvalTask.Load(path)).Message);
        File.WriteAllText(path, "{\"context\": \"x\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n{\"prompt\": \"p\", \"answer\": \"a\"}\n");
        Assert.Equal($"{path}:2: mixes multiple-choice and generation rows; put each kind in its own file", Assert.Throws<InvalidInputException>(() => EvalTask.Load(path)).Message);
    }

    [Fact]
    public void ReportTableAndJson()
    {
        var report = new EvalReport("m", null, new PerplexityResult(2.0, Math.Exp(2.0), 100, 3, 4),
            [new TaskResult("animals_mc", "multiple_choice", 12, new Dictionary<string, double> { ["acc"] = 0.5, ["acc_norm"] = 0.75 })]);
        var table = report.ToTable().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("validation | perplexity | 7.3891 | 100", table[3]);
        Assert.Equal("animals_mc | acc_norm   | 0.7500 |  12", table[5]);
        var json = System.Text.Json.Nodes.JsonNode.Parse(report.ToJson())!;
        Assert.Equal(0.75, json["tasks"]!["animals_mc"]!["acc_norm"]!.GetValue<double>());
        Assert.Equal(100, json["validation"]!["tokens"]!.GetValue<long>());
    }

    [Fact]
    public void HeldOutExactMatchStopsAtTheModelFoldersEosIds()
    {
        var model = fixture.Generator.Model;
        var tokenizer = fixture.Generator.Tokenizer;
        long[] prompt = tokenizer.Encode("The cat").Select(i => (long)i).ToArray();
        IReadOnlyList<long> greedy;
        lock (fixture.Gate) greedy = TokenGenerator.Generate(model, prompt, new GenerationOptions { MaxNewTokens = 3 });
        // A held-out row whose labelled answer is exactly the model's greedy continuation.
        int[] ids = prompt.Concat(greedy).Select(i => (int)i).ToArray();
        int[] labels = ids.Select((id, i) => i < prompt.Length ? SharpTune.Tokenization.TokenLabels.IgnoreIndex : id).ToArray();
        var rows = new[] { new SharpTune.Data.TokenizedExample(ids, labels) };

        ExactMatchResult plain, stopped;
        lock (fixture.Gate)
        {
            plain = new Evaluator(model, tokenizer).ExactMatch(rows);
            // generation_config.json naming the first answer token as an EOS id ends the generation there.
            stopped = new Evaluator(model, tokenizer, new GenerationDefaults([greedy[0]])).ExactMatch(rows);
        }
        Assert.Equal((1, 1), (plain.Correct, plain.Total));
        Assert.Equal((0, 1), (stopped.Correct, stopped.Total));
        Assert.Equal(tokenizer.Decode(greedy.Take(1).Select(i => (int)i), skipSpecialTokens: true), stopped.Sample!.Generated);
    }
}
