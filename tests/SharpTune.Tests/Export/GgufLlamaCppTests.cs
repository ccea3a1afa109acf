using System.Globalization;
using System.Text.Json.Nodes;
using SharpTune.Export;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Tests.Modeling;
using SharpTune.Tokenization;
using static TorchSharp.torch;

namespace SharpTune.Tests.Export;

/// <summary>llama.cpp itself (node-llama-cpp) loads SharpTune's GGUF exports and continues prompts as SharpTune does.</summary>
public sealed class GgufLlamaCppTests
{
    private static readonly long[] FixturePrompt = [5, 246, 225, 161, 38, 44, 164, 206, 52, 10];

    private static string Export(string model, string outType, string? tokenizer = null, string? adapter = null)
    {
        var path = Path.Combine(TestPaths.TempDir(), $"{outType}.gguf");
        var args = new List<string> { "export", "--model", model, "--outtype", outType, "--out", path };
        if (tokenizer is not null) args.AddRange(["--tokenizer", tokenizer]);
        if (adapter is not null) args.AddRange(["--adapter", adapter]);
        var (code, _, err) = CliRunner.Run([.. args]);
        Assert.True(code == 0, err);
        return path;
    }

    private static long[] SharpTuneGreedy(string model, long[] prompt, int n, string? adapter = null)
    {
        var args = new List<string> { "generate", "--model", model, "--prompt-ids", string.Join(",", prompt), "--max-new-tokens", $"{n}", "--output-ids", "--temperature", "0", "--dtype", "float32" };
        if (adapter is not null) args.AddRange(["--adapter", adapter]);
        var (code, stdout, err) = CliRunner.Run([.. args]);
        Assert.True(code == 0, err);
        return LlamaCppCheck.Ids(JsonNode.Parse(stdout.Trim().Split('\n')[^1]));
    }

    /// <summary>SharpTune's ids must equal llama.cpp's greedy ids (SharpTune stops at EOS; llama.cpp runs every step).</summary>
    private static void AssertSameContinuation(string what, long[] sharpTune, JsonNode llamaCpp)
    {
        var ids = LlamaCppCheck.Ids(llamaCpp["greedy"]);
        int diverge = Enumerable.Range(0, sharpTune.Length).FirstOrDefault(i => ids[i] != sharpTune[i], -1);
        if (diverge >= 0)
            Assert.Fail($"{what}: first divergence at step {diverge}: SharpTune {sharpTune[diverge]}, llama.cpp {ids[diverge]}; llama.cpp top log-probs {llamaCpp["steps"]![diverge]!["top"]!.ToJsonString()}");
    }

    /// <summary>@huggingface/gguf reads back every key SharpTune's reader sees, with the same value.</summary>
    private static void AssertMetadataReadsBack(string path, JsonNode llamaCpp)
    {
        var contents = GgufFile.Read(path);
        var parsed = llamaCpp["metadata"]!.AsObject();
        foreach (var (key, value) in contents.Metadata)
        {
            Assert.True(parsed.ContainsKey(key), $"@huggingface/gguf did not read {key}");
            if (value.Value is List<object> list)
            {
                var items = parsed[key]!.AsArray();
                Assert.Equal(list.Count, items.Count);
                for (int i = 0; i < list.Count; i++) AssertSameValue(key, list[i], items[i]!);
            }
            else AssertSameValue(key, value.Value, parsed[key]!);
        }
        Assert.Equal(contents.Tensors.Count, llamaCpp["tensors"]!.AsArray().Count);
    }

    private static void AssertSameValue(string key, object expected, JsonNode actual)
    {
        switch (expected)
        {
            case string s: Assert.Equal(s, actual.GetValue<string>()); break;
            case bool b: Assert.Equal(b, actual.GetValue<bool>()); break;
            default: Assert.True(Convert.ToDouble(expected, CultureInfo.InvariantCulture) == actual.GetValue<double>(), $"{key}: {expected} vs {actual}"); break;
        }
    }

    private static double Perplexity(string model, long[] ids)
    {
        using var lm = ModelLoader.Load(model);
        return Math.Exp(Scorer.Score(lm, new ScoreRequest([ids])).Loss);
    }

    [SkippableFact]
    public void EveryFixtureFamilyContinuesLikeSharpTuneInF32AndF16()
    {
        LlamaCppCheck.RequireTools();
        var requests = new JsonArray();
        var expected = new List<(string What, string Path, long[] Ids)>();
        foreach (var family in new[] { "llama", "llama31", "mistral", "qwen2", "gemma", "gemma2", "phi3" })
        {
            var model = GgufExportTests.Fixture(family);
            if (family == "phi3")
            {
                // llama.cpp sets phi-3 token attributes by general.name and needs phi-3's own tokens for that; the
                // byte tokenizer has none, so the folder gets a neutral name.
                var copy = Path.Combine(TestPaths.TempDir(), "tiny-fixture");
                Directory.CreateDirectory(copy);
                foreach (var f in Directory.GetFiles(model)) File.Copy(f, Path.Combine(copy, Path.GetFileName(f)));
                model = copy;
            }
            // llama.cpp's llama graph has no sliding window: mistral's fixture (window 8) is compared within the window.
            long[] prompt = family == "mistral" ? FixturePrompt[..4] : FixturePrompt;
            int n = family == "mistral" ? 4 : 8;
            var ids = SharpTuneGreedy(model, prompt, n);
            foreach (var outType in new[] { "f32", "f16" })
            {
                var path = Export(model, outType, GgufExportTests.ByteTokenizer);
                requests.Add(LlamaCppCheck.Request(path, prompt, n, contextSize: 64));
                expected.Add(($"{family} {outType}", path, ids));
            }
        }
        var results = LlamaCppCheck.Run(requests);
        for (int i = 0; i < expected.Count; i++)
        {
            AssertSameContinuation(expected[i].What, expected[i].Ids, results[i]!);
            AssertMetadataReadsBack(expected[i].Path, results[i]!);
        }
    }

    /// <summary>Qwen3, Mixtral and Qwen3-MoE (hf-tiny-new fixtures) and a Gemma 3 laid out as llama.cpp reads it.</summary>
    [SkippableFact]
    public void FamiliesAddedSinceContinueLikeSharpTuneInF32AndF16()
    {
        LlamaCppCheck.RequireTools();
        var models = new List<(string Family, string Dir)>();
        foreach (var family in new[] { "qwen3", "mixtral", "qwen3_moe" })
            models.Add((family, Path.Combine(TestPaths.Fixtures, "hf-tiny-new", family)));
        // llama.cpp's gemma3 makes every 6th layer global: 6 layers, window 4 (shorter than the prompt), linear rope
        // scaling on the global layer, query_pre_attn_scalar ≠ head_dim (the scale is folded into attn_q_norm).
        var gemma3 = TinyModels.TinyConfig("gemma3_text", j =>
        {
            j["vocab_size"] = 256; j["hidden_size"] = 64; j["intermediate_size"] = 128; j["head_dim"] = 16;
            j["num_hidden_layers"] = 6; j["sliding_window"] = 4; j["sliding_window_pattern"] = 6; j["query_pre_attn_scalar"] = 32;
            j["rope_theta"] = 1000000.0; j["rope_local_base_freq"] = 10000.0;
            j["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 8.0 };
        });
        var gemma3Dir = TestPaths.TempDir();
        using (var built = TinyModels.Build(gemma3, seed: 31)) ModelIO.Save(built, gemma3Dir);
        models.Add(("gemma3", gemma3Dir));

        var requests = new JsonArray();
        var expected = new List<(string What, string Path, long[] Ids)>();
        foreach (var (family, model) in models)
        {
            var ids = SharpTuneGreedy(model, FixturePrompt, 8);
            foreach (var outType in new[] { "f32", "f16" })
            {
                var path = Export(model, outType, GgufExportTests.ByteTokenizer);
                requests.Add(LlamaCppCheck.Request(path, FixturePrompt, 8, FixturePrompt, contextSize: 64));
                expected.Add(($"{family} {outType}", path, ids));
            }
        }
        var results = LlamaCppCheck.Run(requests);
        for (int i = 0; i < expected.Count; i++)
        {
            AssertSameContinuation(expected[i].What, expected[i].Ids, results[i]!);
            AssertMetadataReadsBack(expected[i].Path, results[i]!);
            // f32: llama.cpp's perplexity of the prompt equals SharpTune's (the whole forward, not only the argmax).
            if (i % 2 == 0) Assert.InRange(results[i]!["perplexity"]!.GetValue<double>() / Perplexity(models[i / 2].Dir, FixturePrompt), 0.999, 1.001);
        }
        var moe = GgufFile.Read(expected[4].Path);
        Assert.Equal("qwen3moe", moe["general.architecture"].Value);
        Assert.Contains(moe.Tensors, t => t.Name == "blk.1.ffn_down_exps.weight" && t.Dims.SequenceEqual([32L, 64L, 8L]));
        Assert.Contains(moe.Tensors, t => t.Name == "blk.0.ffn_gate_inp.weight" && t.Type == GgmlType.F32);
    }

    [Fact]
    public void Gemma3WithALayerPatternLlamaCppCannotReadIsRefused()
    {
        // The hf-tiny-new fixture makes every 3rd layer global; llama.cpp's gemma3 hard-codes every 6th.
        var path = Path.Combine(TestPaths.TempDir(), "g.gguf");
        var (code, _, err) = CliRunner.Run("export", "--model", Path.Combine(TestPaths.Fixtures, "hf-tiny-new", "gemma3"), "--tokenizer", GgufExportTests.ByteTokenizer, "--outtype", "f32", "--out", path);
        Assert.Equal(2, code);
        Assert.Contains("sliding_window_pattern", err);
        Assert.False(File.Exists(path));
    }

    [SkippableFact]
    public void BundledChatModelKeepsItsTokensAndQ8PerplexityWithinOnePercent()
    {
        LlamaCppCheck.RequireTools();
        var model = Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat");
        var tokenizer = HfTokenizer.FromDirectory(model);
        const string text = "Reverse: wolf";
        var prompt = tokenizer.Encode(tokenizer.ApplyChatTemplate([new Dictionary<string, object?> { ["role"] = "user", ["content"] = text }], addGenerationPrompt: true), addSpecialTokens: false)
            .Select(i => (long)i).ToArray();
        var heldOut = tokenizer.Encode("<|im_start|>user\nReverse: kite<|im_end|>\n<|im_start|>assistant\netik<|im_end|>\n", addSpecialTokens: false).Select(i => (long)i).ToArray();
        var ids = SharpTuneGreedy(model, prompt, 6);
        var paths = new[] { "f32", "f16", "q8_0" }.Select(t => Export(model, t)).ToArray();
        var results = LlamaCppCheck.Run(new JsonArray(paths.Select(p => (JsonNode)LlamaCppCheck.Request(p, prompt, 6, heldOut, text)).ToArray()));
        AssertSameContinuation("tiny-chat f32", ids, results[0]!);
        AssertSameContinuation("tiny-chat f16", ids, results[1]!);
        double f32 = results[0]!["perplexity"]!.GetValue<double>(), q8 = results[2]!["perplexity"]!.GetValue<double>();
        Assert.InRange(f32 / Perplexity(model, heldOut), 0.999, 1.001);
        Assert.InRange(q8 / f32, 0.99, 1.01);
        Assert.Equal(tokenizer.Encode(text, addSpecialTokens: false).Select(i => (long)i), LlamaCppCheck.Ids(results[0]!["textTokens"]));
        AssertMetadataReadsBack(paths[2], results[2]!);
    }

    [SkippableFact]
    public void TrainedStoriesModelAndMergedAdapterContinueLikeSharpTune()
    {
        var stories = TestPaths.RequireShared("models/stories260K");
        LlamaCppCheck.RequireTools();
        var tokenizer = HfTokenizer.FromDirectory(stories);
        const string story = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
        var heldOut = tokenizer.Encode(story).Select(i => (long)i).ToArray();
        var prompt = heldOut[..10];
        var ids = SharpTuneGreedy(stories, prompt, 12);
        var lora = Path.Combine(GgufExportTests.Fixture("llama_lora"), "adapter");
        var loraIds = SharpTuneGreedy(GgufExportTests.Fixture("llama"), FixturePrompt, 8, lora);
        var paths = new[] { "f32", "f16", "q8_0", "bf16" }.Select(t => Export(stories, t)).ToArray();
        var loraPath = Export(GgufExportTests.Fixture("llama"), "f32", GgufExportTests.ByteTokenizer, lora);
        var requests = new JsonArray(paths.Select(p => (JsonNode)LlamaCppCheck.Request(p, prompt, 12, heldOut, story)).ToArray());
        requests.Add(LlamaCppCheck.Request(loraPath, FixturePrompt, 8, contextSize: 64));
        var results = LlamaCppCheck.Run(requests);
        AssertSameContinuation("stories260K f32", ids, results[0]!);
        AssertSameContinuation("stories260K f16", ids, results[1]!);
        AssertSameContinuation("llama + llama_lora merged, f32", loraIds, results[4]!);
        Assert.Equal("llama", results[0]!["metadata"]!["tokenizer.ggml.model"]!.GetValue<string>());
        // llama.cpp's SentencePiece tokenizer splits the text as the HF tokenizer does (no BOS: node-llama-cpp adds none).
        Assert.Equal(heldOut[1..], LlamaCppCheck.Ids(results[0]!["textTokens"]));
        double f32 = results[0]!["perplexity"]!.GetValue<double>(), q8 = results[2]!["perplexity"]!.GetValue<double>();
        Assert.InRange(f32 / Perplexity(stories, heldOut), 0.999, 1.001);
        Assert.InRange(q8 / f32, 0.99, 1.01);
        Assert.InRange(results[3]!["perplexity"]!.GetValue<double>() / f32, 0.99, 1.01);   // bf16 weights
    }

    [SkippableFact]
    public void KQuantAndQ4_0BlocksDecodeInLlamaCppAsSharpTuneDecodesThem()
    {
        LlamaCppCheck.RequireTools();
        // Rows of 256 and 512 so q4_K, q6_K (and q4_0's q6_K output) are used rather than their fallbacks.
        var json = TinyModels.TinyConfig("qwen2", j =>
        {
            j["vocab_size"] = 256; j["hidden_size"] = 256; j["intermediate_size"] = 512;
            j["num_attention_heads"] = 4; j["num_key_value_heads"] = 2; j["tie_word_embeddings"] = false;
        });
        var dir = TestPaths.TempDir();
        using (var built = TinyModels.Build(json, seed: 21)) ModelIO.Save(built, dir);
        var random = new Random(4);
        var heldOut = Enumerable.Range(0, 48).Select(_ => (long)random.Next(256)).ToArray();
        var config = ModelFamilies.LoadConfig(dir);
        var arch = GgufArchitectures.For(config);
        var requests = new JsonArray();
        var dequantizedDirs = new List<string>();
        foreach (var outType in new[] { "q4_k_m", "q4_0", "q8_0" })
        {
            var path = Export(dir, outType, GgufExportTests.ByteTokenizer);
            var contents = GgufFile.Read(path);
            Assert.Contains(contents.Tensors, t => t.Type == (outType == "q4_0" ? GgmlType.Q4_0 : outType == "q8_0" ? GgmlType.Q8_0 : GgmlType.Q4_K));
            if (outType != "q8_0") Assert.Contains(contents.Tensors, t => t.Type == GgmlType.Q6_K);
            // The same weights as SharpTune decodes the blocks, back in the HF layout (qwen2 needs no transforms).
            using var lm = ModelLoader.Load(dir);
            var hfNames = lm.named_parameters().Select(p => p.name).ToDictionary(n => arch.TensorName(n)!);
            var tensors = contents.Tensors.Select(t =>
            {
                long count = t.Dims.Aggregate(1L, (a, b) => a * b);
                var values = GgmlQuants.DequantizeRow(t.Type, GgufFile.ReadTensorBytes(path, contents, t), (int)count);
                return KeyValuePair.Create(hfNames[t.Name], tensor(values, t.Dims.Reverse().ToArray()));
            }).ToList();
            var dequantized = TestPaths.TempDir();
            ModelIO.SaveTensors(config, tensors, ScalarType.Float32, dequantized);
            dequantizedDirs.Add(dequantized);
            requests.Add(LlamaCppCheck.Request(path, heldOut[..8], 4, heldOut, contextSize: 64));
        }
        var results = LlamaCppCheck.Run(requests);
        double originalNll = Math.Log(Perplexity(dir, heldOut));
        for (int i = 0; i < 3; i++)
        {
            double llamaCppNll = Math.Log(results[i]!["perplexity"]!.GetValue<double>());
            double sharpTuneNll = Math.Log(Perplexity(dequantizedDirs[i], heldOut));
            // llama.cpp rounds activations to 8 bits in its quantized dot products, so it is not exact; but its mean
            // NLL sits on SharpTune's decoding of the same blocks, far closer than to the unquantized model (q4 types).
            Assert.InRange(Math.Abs(llamaCppNll - sharpTuneNll), 0, 0.03);
            if (i < 2) Assert.True(Math.Abs(llamaCppNll - sharpTuneNll) < 0.2 * Math.Abs(originalNll - sharpTuneNll), $"{i}: {llamaCppNll} {sharpTuneNll} {originalNll}");
            Assert.Equal(SharpTuneGreedy(dequantizedDirs[i], heldOut[..8], 4), LlamaCppCheck.Ids(results[i]!["greedy"]));
        }
    }
}
