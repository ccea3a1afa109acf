using System.Text.Json.Nodes;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Tests.Modeling;
using SharpTune.Tokenization;

namespace SharpTune.Tests.Inference;

public sealed class GenerationTests
{
    private readonly HfFixture fixture = new("llama");

    [Fact]
    public void BatchOfOneReproducesGoldenGreedyTokens()
    {
        using var model = ModelLoader.Load(fixture.Dir);
        var options = new GenerationOptions { MaxNewTokens = fixture.GreedyMaxNewTokens };
        var result = BatchGenerator.Generate(model, [fixture.GreedyPrompt], options);
        Assert.Equal(fixture.Greedy, result[0].Ids);
        Assert.Equal(FinishReason.Length, result[0].Finish);
    }

    [Fact]
    public void LeftPaddedBatchEqualsEachRowAlone()
    {
        using var model = ModelLoader.Load(fixture.Dir);
        var rows = new[] { fixture.GreedyPrompt, fixture.InputIds[1][..5], fixture.InputIds[0][3..20] };
        var options = new GenerationOptions { MaxNewTokens = 12 };
        var batched = BatchGenerator.Generate(model, rows, options);
        for (int r = 0; r < rows.Length; r++)
            Assert.Equal(TokenGenerator.Generate(model, rows[r], options), batched[r].Ids);
        Assert.Equal(fixture.Greedy, batched[0].Ids.Take(fixture.Greedy.Length));
        // Full recomputation with the padded mask gives the same tokens as the cache.
        var uncached = BatchGenerator.Generate(model, rows, options with { UseCache = false });
        Assert.Equal(batched.Select(b => b.Ids), uncached.Select(b => b.Ids));
    }

    [Fact]
    public void RowsWithTheirOwnOptionsAndCancellationMatchRunningAlone()
    {
        // What the server does with separate requests: one greedy row with a budget of 4, one sampled row with a seed,
        // and one row whose client went away.
        using var model = ModelLoader.Load(fixture.Dir);
        var greedy = new GenerationOptions { MaxNewTokens = 4 };
        var sampled = new GenerationOptions { MaxNewTokens = 10, Temperature = 0.8, TopK = 20, Seed = 5 };
        using var gone = new CancellationTokenSource();
        gone.Cancel();
        var rows = new[] { fixture.GreedyPrompt, fixture.InputIds[1][..5], fixture.InputIds[0][3..20] };
        var batched = BatchGenerator.Generate(model, rows, [greedy, sampled, greedy], null, [CancellationToken.None, CancellationToken.None, gone.Token]);
        Assert.Equal(fixture.Greedy.Take(4), batched[0].Ids);
        Assert.Equal(FinishReason.Length, batched[0].Finish);
        Assert.Equal(BatchGenerator.Generate(model, [rows[1]], sampled)[0].Ids, batched[1].Ids);
        Assert.Equal(10, batched[1].Ids.Count);
        Assert.Empty(batched[2].Ids);
        Assert.Equal(FinishReason.Cancelled, batched[2].Finish);
    }

    [Fact]
    public void RowNearTheContextEndsEarlyWhileTheOthersContinue()
    {
        using var model = ModelLoader.Load(fixture.Dir);
        var nearFull = Enumerable.Range(0, 250).Select(i => (long)(3 + i % 250)).ToArray();
        var options = new GenerationOptions { MaxNewTokens = 20 };
        var result = BatchGenerator.Generate(model, [nearFull, fixture.GreedyPrompt], options);
        Assert.Equal(6, result[0].Ids.Count);
        Assert.Equal(FinishReason.Length, result[0].Finish);
        Assert.Equal(TokenGenerator.Generate(model, nearFull, options), result[0].Ids);
        Assert.Equal(TokenGenerator.Generate(model, fixture.GreedyPrompt, options), result[1].Ids);
        Assert.Equal(20, result[1].Ids.Count);
    }

    [Fact]
    public void SeededSamplingOfOneRowMatchesTheSingleRowGenerator()
    {
        using var model = ModelLoader.Load(fixture.Dir);
        var options = new GenerationOptions { MaxNewTokens = 10, Temperature = 1.3, TopK = 50, TopP = 0.9, Seed = 42 };
        var single = TokenGenerator.Generate(model, fixture.GreedyPrompt, options);
        Assert.Equal(single, BatchGenerator.Generate(model, [fixture.GreedyPrompt], options)[0].Ids);
        Assert.NotEqual(fixture.Greedy, single.Take(fixture.Greedy.Length));
    }

    [Fact]
    public void EachRowStopsAtItsOwnEosAndCallbackStops()
    {
        using var model = ModelLoader.Load(fixture.Dir);
        // The golden continuation's third token acts as EOS: row 0 stops there, the other row runs to the budget.
        long eos = fixture.Greedy[2];
        var other = fixture.InputIds[1][..6];
        var free = TokenGenerator.Generate(model, other, new GenerationOptions { MaxNewTokens = 8 });
        Assert.DoesNotContain(eos, free);
        var result = BatchGenerator.Generate(model, [fixture.GreedyPrompt, other], new GenerationOptions { MaxNewTokens = 8, EosTokenIds = [eos] });
        Assert.Equal(fixture.Greedy[..3], result[0].Ids);
        Assert.Equal(FinishReason.Stop, result[0].Finish);
        Assert.Equal(free, result[1].Ids);
        var stopped = BatchGenerator.Generate(model, [fixture.GreedyPrompt], new GenerationOptions { MaxNewTokens = 8 }, (_, id) => id == fixture.Greedy[4]);
        Assert.Equal(fixture.Greedy[..5], stopped[0].Ids);
    }

    [Fact]
    public void ClearErrorsForBadPromptsAndSettings()
    {
        using var model = ModelLoader.Load(fixture.Dir);
        var options = new GenerationOptions { MaxNewTokens = 4 };
        var empty = Assert.Throws<InvalidInputException>(() => BatchGenerator.Generate(model, [fixture.GreedyPrompt, []], options));
        Assert.Equal("prompt 1: empty; give at least one token", empty.Message);
        var tooLong = Assert.Throws<InvalidInputException>(() => BatchGenerator.Generate(model, [new long[256]], options));
        Assert.Equal("prompt: 256 tokens do not fit the model's context of 256 tokens (at most 255 leave room for one new token)", tooLong.Message);
        var temperature = Assert.Throws<InvalidInputException>(() => BatchGenerator.Generate(model, [fixture.GreedyPrompt], options with { Temperature = -1 }));
        Assert.Equal("temperature: -1 is invalid; expected a number ≥ 0", temperature.Message);
        var topP = Assert.Throws<InvalidInputException>(() => BatchGenerator.Generate(model, [fixture.GreedyPrompt], options with { Temperature = 1, TopP = 1.5 }));
        Assert.Equal("top_p: 1.5 is invalid; expected a number in (0, 1]", topP.Message);
        // A prompt of 250 tokens leaves room for 6: generation ends at the context with finish reason length.
        var nearFull = Enumerable.Repeat(5L, 250).ToArray();
        var cut = BatchGenerator.Generate(model, [nearFull], options with { MaxNewTokens = 50 });
        Assert.Equal(6, cut[0].Ids.Count);
        Assert.Equal(FinishReason.Length, cut[0].Finish);
    }

    [Fact]
    public void EosIdsComeFromGenerationConfigAndConfig()
    {
        var dir = TestPaths.TempDir();
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), """{"eos_token_id": [128001, 128008, 128009]}""");
        var config = ModelFamilies.ParseConfig(TinyModels.TinyConfig("llama", j => j["eos_token_id"] = 2), "test");
        Assert.Equal([2L, 128001, 128008, 128009], GenerationDefaults.Load(dir, config).EosTokenIds);
        File.WriteAllText(Path.Combine(dir, "generation_config.json"), """{"eos_token_id": "x"}""");
        var bad = Assert.Throws<InvalidInputException>(() => GenerationDefaults.Load(dir, config));
        Assert.EndsWith("generation_config.json: eos_token_id is String; expected an integer or a list of integers", bad.Message);
    }

    /// <summary>
    /// The text path on the transformers fixture: a tokenizer whose 256 tokens are single characters turns the golden
    /// prompt into text and back, and the generated text decodes to exactly the golden tokens.
    /// </summary>
    [Fact]
    public void TextPathReproducesGoldenTokensThroughTheTokenizer()
    {
        var dir = TestPaths.TempDir();
        foreach (var file in new[] { "config.json", "generation_config.json", "model.safetensors" })
            File.Copy(Path.Combine(fixture.Dir, file), Path.Combine(dir, file));
        var vocab = new JsonObject();
        for (int i = 0; i < 256; i++) vocab[((char)(0x4E00 + i)).ToString()] = i;
        var tokenizerJson = new JsonObject
        {
            ["version"] = "1.0",
            ["model"] = new JsonObject { ["type"] = "BPE", ["vocab"] = vocab, ["merges"] = new JsonArray() },
            ["decoder"] = new JsonObject { ["type"] = "Fuse" },
        };
        File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizerJson.ToJsonString());
        var generator = TextGenerator.Load(dir);
        using var weights = generator.Model;
        string Text(IEnumerable<long> ids) => string.Concat(ids.Select(i => (char)(0x4E00 + i)));
        var promptIds = generator.EncodePrompt(Text(fixture.GreedyPrompt));
        Assert.Equal(fixture.GreedyPrompt, promptIds);
        var pieces = new List<string>();
        var result = generator.Generate(promptIds, new TextGenerationOptions { Sampling = new GenerationOptions { MaxNewTokens = fixture.GreedyMaxNewTokens } }, pieces.Add);
        Assert.Equal(Text(fixture.Greedy), result.Text);
        Assert.Equal(fixture.Greedy, result.Ids);
        Assert.Equal(fixture.Greedy.Length, pieces.Count);
        // Stop string = the golden 4th..5th characters: the text ends just before them.
        var stopped = generator.Generate(promptIds, new TextGenerationOptions
        {
            Sampling = new GenerationOptions { MaxNewTokens = fixture.GreedyMaxNewTokens },
            StopStrings = [Text(fixture.Greedy[3..5])],
        });
        Assert.Equal(Text(fixture.Greedy[..3]), stopped.Text);
        Assert.Equal(5, stopped.CompletionTokens);
        Assert.Equal(FinishReason.Stop, stopped.Finish);
    }
}
