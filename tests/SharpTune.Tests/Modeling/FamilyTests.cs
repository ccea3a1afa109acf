using System.Text.Json.Nodes;
using SharpTune.Inference;
using SharpTune.Modeling;
using static TorchSharp.torch;
using static SharpTune.Tests.Modeling.TinyModels;
using SharpTune.Tokenization;

namespace SharpTune.Tests.Modeling;

/// <summary>Family semantics as transformers defines them: fused Phi-3 projections, sliding windows, Gemma's norms and soft-caps, Qwen2's biases.</summary>
public sealed class FamilyTests
{
    [Fact]
    public void Phi3FusedProjectionsEqualLlamaSplitProjections()
    {
        using var llama = Build(TinyConfig("llama"), seed: 11);
        using var phi3 = Build(TinyConfig("phi3"), seed: 99);
        var source = llama.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
        {
            foreach (var (name, parameter) in phi3.named_parameters())
            {
                Tensor value = name switch
                {
                    _ when name.EndsWith("qkv_proj.weight") => cat([source[name.Replace("qkv_proj", "q_proj")], source[name.Replace("qkv_proj", "k_proj")], source[name.Replace("qkv_proj", "v_proj")]], 0),
                    _ when name.EndsWith("gate_up_proj.weight") => cat([source[name.Replace("gate_up_proj", "gate_proj")], source[name.Replace("gate_up_proj", "up_proj")]], 0),
                    _ => source[name],
                };
                parameter.copy_(value);
            }
        }
        Assert.Equal(new long[] { 32 + 2 * 16, 32 }, phi3.named_parameters().Single(p => p.name == "model.layers.0.self_attn.qkv_proj.weight").parameter.shape);
        Assert.Equal(new long[] { 2 * 48, 32 }, phi3.named_parameters().Single(p => p.name == "model.layers.1.mlp.gate_up_proj.weight").parameter.shape);

        using var ids = tensor(Sequence(20, 64, 1), [1, 20]);
        using var noGrad = no_grad();
        using var expected = llama.Forward(new ForwardBatch(ids));
        using var actual = phi3.Forward(new ForwardBatch(ids));
        Assert.True(MaxAbsDiff(expected, actual) < 1e-5, $"max diff {MaxAbsDiff(expected, actual)}");
        Assert.True(expected.abs().max().item<float>() > 0.1);   // the comparison is not between two near-zero outputs
    }

    [Fact]
    public void MistralSlidingWindowHidesTokensAtWindowDistanceAndBeyond()
    {
        // One layer: the last query (position 19) sees exactly positions 12..19 with sliding_window 8.
        using var model = Build(TinyConfig("mistral", j => { j["num_hidden_layers"] = 1; j["sliding_window"] = 8; }));
        Assert.Equal(8, model.Config.SlidingWindow);
        Assert.Equal([true], model.Config.SlidingLayers);
        var ids = Sequence(20, 64, 2);
        using var baseline = LastLogits(model, ids);
        using var outside = LastLogits(model, Changed(ids, 11));
        using var inside = LastLogits(model, Changed(ids, 12));
        Assert.True(MaxAbsDiff(baseline, outside) < 1e-6, $"token 19-8 changed the logits by {MaxAbsDiff(baseline, outside)}");
        Assert.True(MaxAbsDiff(baseline, inside) > 1e-3, $"token 19-7 changed the logits by only {MaxAbsDiff(baseline, inside)}");
    }

    [Fact]
    public void MistralWithoutSlidingWindowSeesEveryToken()
    {
        using var model = Build(TinyConfig("mistral", j => { j["num_hidden_layers"] = 1; j["sliding_window"] = null; }));
        Assert.Null(model.Config.SlidingWindow);
        var ids = Sequence(20, 64, 2);
        using var baseline = LastLogits(model, ids);
        using var changed = LastLogits(model, Changed(ids, 0));
        Assert.True(MaxAbsDiff(baseline, changed) > 1e-3);
    }

    [Fact]
    public void Gemma2SlidesOnEvenLayersOnly()
    {
        var json = TinyConfig("gemma2", j => { j["num_hidden_layers"] = 1; j["sliding_window"] = 4; j["head_dim"] = 8; j["query_pre_attn_scalar"] = 8; });
        using (var oneLayer = Build(json))
        {
            Assert.Equal([true], oneLayer.Config.SlidingLayers);
            var ids = Sequence(12, 64, 3);
            using var baseline = LastLogits(oneLayer, ids);
            using var outside = LastLogits(oneLayer, Changed(ids, 7));   // 11 - 7 = 4 = window: hidden
            using var inside = LastLogits(oneLayer, Changed(ids, 8));
            Assert.True(MaxAbsDiff(baseline, outside) < 1e-6);
            Assert.True(MaxAbsDiff(baseline, inside) > 1e-3);
        }
        json["num_hidden_layers"] = 3;
        using var threeLayers = Build(json);
        Assert.Equal([true, false, true], threeLayers.Config.SlidingLayers);
        var far = Sequence(12, 64, 4);
        using var b = LastLogits(threeLayers, far);
        using var c = LastLogits(threeLayers, Changed(far, 0));   // only layer 1 (global) can carry token 0 forward
        Assert.True(MaxAbsDiff(b, c) > 1e-4);
    }

    [Fact]
    public void Gemma2FinalSoftcapIsTanhOfUncappedLogits()
    {
        var uncappedJson = TinyConfig("gemma2", j => { j["head_dim"] = 8; j["query_pre_attn_scalar"] = 8; j["final_logit_softcapping"] = null; j["attn_logit_softcapping"] = 50.0; });
        var cappedJson = (JsonObject)uncappedJson.DeepClone();
        cappedJson["final_logit_softcapping"] = 2.0;
        using var uncapped = Build(uncappedJson, seed: 5);
        using var capped = Build(cappedJson, seed: 5);
        Assert.Equal(2.0, capped.Config.FinalLogitSoftcapping);
        Assert.Null(uncapped.Config.FinalLogitSoftcapping);
        var ids = Sequence(10, 64, 5);
        using var raw = LastLogits(uncapped, ids);
        using var cappedLogits = LastLogits(capped, ids);
        Assert.True(raw.abs().max().item<float>() > 2.0);   // the cap binds
        Assert.True(cappedLogits.abs().max().item<float>() <= 2.0);
        using var expected = (raw / 2.0).tanh() * 2.0;
        Assert.True(MaxAbsDiff(expected, cappedLogits) < 1e-5);
    }

    [Fact]
    public void Gemma2DefaultsMatchTransformers()
    {
        var config = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "gemma2", ["num_hidden_layers"] = 4 }, "test");
        Assert.Equal(50.0, config.AttnLogitSoftcapping);
        Assert.Equal(30.0, config.FinalLogitSoftcapping);
        Assert.Equal(4096, config.SlidingWindow);
        Assert.Equal(1 / Math.Sqrt(224), config.AttentionScale, 12);
        Assert.Equal(256, config.HeadDim);
        Assert.Equal("gelu_pytorch_tanh", config.HiddenAct);
        Assert.True(config.TieWordEmbeddings);
        Assert.Equal([true, false, true, false], config.SlidingLayers);
    }

    [Fact]
    public void Gemma2AttentionSoftcapChangesScoresOnlyWhenItBinds()
    {
        JsonObject Json(double? cap) => TinyConfig("gemma2", j => { j["head_dim"] = 8; j["query_pre_attn_scalar"] = 8; j["attn_logit_softcapping"] = cap; j["final_logit_softcapping"] = null; });
        using var none = Build(Json(null), seed: 8);
        using var loose = Build(Json(1e6), seed: 8);
        using var tight = Build(Json(0.5), seed: 8);
        var ids = Sequence(10, 64, 6);
        using var a = LastLogits(none, ids);
        using var b = LastLogits(loose, ids);
        using var c = LastLogits(tight, ids);
        Assert.True(MaxAbsDiff(a, b) < 1e-4);
        Assert.True(MaxAbsDiff(a, c) > 1e-3);
    }

    [Fact]
    public void GemmaScalesEmbeddingsBySqrtHidden()
    {
        using var model = Build(TinyConfig("gemma", j => j["head_dim"] = 8));
        Tensor? seen = null;
        model.train();
        model.Model.EmbeddingTransform = x => { seen = x.detach().clone().DetachFromDisposeScope(); return x; };
        using var ids = Ids(5, 9, 17);
        using (no_grad()) model.Forward(new ForwardBatch(ids)).Dispose();
        using var expected = model.Model.EmbedTokens.Weight.index_select(0, tensor(new long[] { 5, 9, 17 })) * (float)Math.Sqrt(32);
        Assert.NotNull(seen);
        Assert.True(MaxAbsDiff(expected, seen![0]) < 1e-6);
        Assert.Equal(NormStyle.OnePlusWeight, model.Config.NormStyle);
        Assert.True(model.Config.TieWordEmbeddings);
        Assert.DoesNotContain(model.named_parameters(), p => p.name == "lm_head.weight");
    }

    [Fact]
    public void OnePlusWeightRmsNormMultipliesByOnePlusW()
    {
        using var norm = new RmsNorm(4, 1e-6, NormStyle.OnePlusWeight, ScalarType.Float32);
        using (no_grad()) norm.Weight.copy_(tensor(new float[] { 0.5f, -1f, 0f, 2f }));
        using var x = tensor(new float[] { 1, 2, 3, 4 }).view(1, 4);
        using var y = norm.call(x);
        double rms = Math.Sqrt((1 + 4 + 9 + 16) / 4.0 + 1e-6);
        float[] expected = [(float)(1 / rms * 1.5), 0f, (float)(3 / rms), (float)(4 / rms * 3)];
        var actual = y.data<float>().ToArray();
        for (int i = 0; i < 4; i++) Assert.Equal(expected[i], actual[i], 5);
    }

    [Fact]
    public void Qwen2HasBiasedQkvUnbiasedOutputAndTiedHead()
    {
        using var model = Build(TinyConfig("qwen2", j => j["tie_word_embeddings"] = true));
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.self_attn.q_proj.bias", names);
        Assert.Contains("model.layers.0.self_attn.k_proj.bias", names);
        Assert.Contains("model.layers.1.self_attn.v_proj.bias", names);
        Assert.DoesNotContain("model.layers.0.self_attn.o_proj.bias", names);
        Assert.DoesNotContain("model.layers.0.mlp.gate_proj.bias", names);
        Assert.DoesNotContain("lm_head.weight", names);
        Assert.Equal(new long[] { 16 }, model.named_parameters().Single(p => p.name == "model.layers.0.self_attn.k_proj.bias").parameter.shape);
        Assert.Equal(2 * 12 + 2, names.Count);   // per layer: 4 attention weights + 3 biases + 3 mlp + 2 norms; + embed_tokens + norm

        // Tied: the output projection is the embedding table itself.
        Assert.True(ReferenceEquals(model.Model.EmbedTokens.Weight, model.OutputWeight));

        var dir = TestPaths.TempDir();
        ModelIO.Save(model, dir);
        using var checkpoint = SharpTune.SafeTensors.SafeTensorsCheckpoint.Open(dir);
        Assert.False(checkpoint.Contains("lm_head.weight"));
        Assert.True(checkpoint.Contains("model.layers.0.self_attn.q_proj.bias"));
        Assert.Equal(names.OrderBy(n => n, StringComparer.Ordinal), checkpoint.Names.OrderBy(n => n, StringComparer.Ordinal));
        using var reloaded = ModelLoader.Load(dir);
        var ids = Sequence(9, 64, 7);
        using var a = LastLogits(model, ids);
        using var b = LastLogits(reloaded, ids);
        Assert.Equal(0.0, MaxAbsDiff(a, b));
    }

    [Fact]
    public void Qwen2SlidesOnlyWithUseSlidingWindowFromMaxWindowLayers()
    {
        var off = ModelFamilies.ParseConfig(TinyConfig("qwen2", j => { j["num_hidden_layers"] = 4; j["sliding_window"] = 8; j["use_sliding_window"] = false; j["max_window_layers"] = 2; }), "test");
        Assert.Null(off.SlidingWindow);
        Assert.Equal([false, false, false, false], off.SlidingLayers);
        var on = ModelFamilies.ParseConfig(TinyConfig("qwen2", j => { j["num_hidden_layers"] = 4; j["sliding_window"] = 8; j["use_sliding_window"] = true; j["max_window_layers"] = 2; }), "test");
        Assert.Equal(8, on.SlidingWindow);
        Assert.Equal([false, false, true, true], on.SlidingLayers);
    }

    [Fact]
    public void FamilyDefaultsFillOmittedKeys()
    {
        var mistral = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "mistral" }, "test");
        Assert.Equal((4096, 14336, 8, 4096, 131072), (mistral.HiddenSize, mistral.IntermediateSize, mistral.NumKeyValueHeads, mistral.SlidingWindow!.Value, mistral.MaxPositionEmbeddings));
        var qwen = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "qwen2" }, "test");
        Assert.Equal((151936, 22016, false, true, false), (qwen.VocabSize, qwen.IntermediateSize, qwen.TieWordEmbeddings, qwen.QkvBias, qwen.OutputBias));
        var gemma = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "gemma", ["hidden_act"] = "gelu" }, "test");
        Assert.Equal("gelu_pytorch_tanh", gemma.HiddenAct);   // transformers reads hidden_activation, not hidden_act
        Assert.Equal((256, 16, true, true), (gemma.HeadDim, gemma.NumKeyValueHeads, gemma.ScaleEmbeddings, gemma.TieWordEmbeddings));
        var phi3 = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "phi3" }, "test");
        Assert.Equal((32064, 1e-5, true, (int?)null), (phi3.VocabSize, phi3.RmsNormEps, phi3.FusedProjections, phi3.SlidingWindow));
        var llama = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "llama", ["attention_bias"] = true }, "test");
        Assert.Equal((true, true, 128, 1e-6), (llama.QkvBias, llama.OutputBias, llama.HeadDim, llama.RmsNormEps));
    }

    [Fact]
    public void Gemma3SlidesByPatternOrLayerTypesWithTransformersDefaults()
    {
        var defaults = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "gemma3_text", ["num_hidden_layers"] = 12 }, "test");
        Assert.Equal(Enumerable.Range(0, 12).Select(i => i != 5 && i != 11), defaults.SlidingLayers);   // sliding_window_pattern 6
        Assert.Equal((4096, 1e6, 10000.0, 1 / Math.Sqrt(256), true, true, true), (defaults.SlidingWindow!.Value, defaults.RopeTheta, defaults.LocalRopeTheta!.Value, defaults.AttentionScale, defaults.QkNorm, defaults.SandwichNorms, defaults.TieWordEmbeddings));
        Assert.Null(defaults.AttnLogitSoftcapping);
        Assert.Null(defaults.FinalLogitSoftcapping);
        Assert.Equal((262208, 256, NormStyle.OnePlusWeight, "gelu_pytorch_tanh"), (defaults.VocabSize, defaults.HeadDim, defaults.NormStyle, defaults.HiddenAct));
        var listed = ModelFamilies.ParseConfig(new JsonObject
        {
            ["model_type"] = "gemma3_text", ["num_hidden_layers"] = 3, ["sliding_window_pattern"] = 2,
            ["layer_types"] = new JsonArray("full_attention", "sliding_attention", "full_attention"),
        }, "test");
        Assert.Equal([false, true, false], listed.SlidingLayers);   // layer_types wins over the pattern
        var bad = Assert.Throws<InvalidInputException>(() => ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "gemma3_text", ["num_hidden_layers"] = 2, ["layer_types"] = new JsonArray("full_attention", "local") }, "x/config.json"));
        Assert.StartsWith("x/config.json: layer_types: ", bad.Message);
    }

    [Fact]
    public void Gemma3SlidingLayersRotateWithTheLocalBaseAndNoScaling()
    {
        // One layer and a window longer than the input: only the RoPE tables differ between the layer types.
        JsonObject Json(string type, double theta, JsonObject? scaling) => TinyConfig("gemma3_text", j =>
        {
            j["num_hidden_layers"] = 1; j["head_dim"] = 8; j["query_pre_attn_scalar"] = 8; j["sliding_window"] = 100;
            j["layer_types"] = new JsonArray(type); j["rope_theta"] = theta; j["rope_local_base_freq"] = 50.0; j["rope_scaling"] = scaling;
        });
        JsonObject Linear() => new() { ["rope_type"] = "linear", ["factor"] = 8.0 };
        using var local = Build(Json("sliding_attention", 1e6, Linear()), seed: 4);
        using var sameAsGlobal = Build(Json("full_attention", 50.0, null), seed: 4);
        using var global = Build(Json("full_attention", 1e6, Linear()), seed: 4);
        var ids = Sequence(16, 64, 8);
        using var a = LastLogits(local, ids);
        using var b = LastLogits(sameAsGlobal, ids);
        using var c = LastLogits(global, ids);
        Assert.True(MaxAbsDiff(a, b) < 1e-5, $"{MaxAbsDiff(a, b)}");
        Assert.True(MaxAbsDiff(a, c) > 1e-3);
    }

    [Fact]
    public void Qwen3NormsEachHeadAndTiesOnlyWhenAsked()
    {
        using var untied = Build(TinyConfig("qwen3", j => j["head_dim"] = 16));   // head_dim × heads = 64 ≠ hidden 32
        var names = untied.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        Assert.Equal(new long[] { 16 }, names["model.layers.0.self_attn.q_norm.weight"].shape);
        Assert.Equal(new long[] { 64, 32 }, names["model.layers.0.self_attn.q_proj.weight"].shape);
        Assert.Contains("lm_head.weight", names.Keys);
        Assert.DoesNotContain(names.Keys, n => n.EndsWith("proj.bias", StringComparison.Ordinal));
        using var tied = Build(TinyConfig("qwen3", j => { j["head_dim"] = 16; j["tie_word_embeddings"] = true; }));
        Assert.DoesNotContain(tied.named_parameters(), p => p.name == "lm_head.weight");
        Assert.True(ReferenceEquals(tied.Model.EmbedTokens.Weight, tied.OutputWeight));
        var biased = ModelFamilies.ParseConfig(TinyConfig("qwen3", j => j["attention_bias"] = true), "test");
        Assert.Equal((true, true), (biased.QkvBias, biased.OutputBias));

        // Per head: scaling one head's q_norm weight changes the output; the norm sees 16 channels, not the whole 64.
        var ids = Sequence(10, 64, 2);
        using var before = LastLogits(untied, ids);
        using (no_grad()) names["model.layers.0.self_attn.q_norm.weight"].mul_(3.0);
        using var after = LastLogits(untied, ids);
        Assert.True(MaxAbsDiff(before, after) > 1e-3);
    }

    [Fact]
    public void UnsupportedModelTypeListsSupportedTypes()
    {
        var error = Assert.Throws<InvalidInputException>(() => ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "gpt2" }, "x/config.json"));
        Assert.Equal("x/config.json: model_type 'gpt2' is not supported; supported: llama, mistral, qwen2, gemma, gemma2, phi3, qwen3, gemma3_text, mixtral, qwen3_moe", error.Message);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gemma3_text")]
    [InlineData("qwen3_moe")]
    public void PackedDocumentsGiveTheTokenWeightedLossOfSeparateDocuments(string arch)
    {
        using var model = arch == "llama" ? Build(TinyConfig("llama"), seed: 21) : Preset(arch, seed: 21);
        var docA = Sequence(7, 64, 31);
        var docB = Sequence(9, 64, 32);
        using var noGrad = no_grad();

        (double Sum, long Count) Separate(long[] doc)
        {
            using var ids = Ids(doc);
            using var logits = model.Forward(new ForwardBatch(ids));
            var (sum, count) = CausalLmLoss.SumAndCount(logits, ids);
            using (sum) return (sum.item<float>(), count);
        }
        var a = Separate(docA);
        var b = Separate(docB);
        Assert.Equal((6L, 8L), (a.Count, b.Count));

        var packed = docA.Concat(docB).ToArray();
        var labels = packed.ToArray();
        labels[docA.Length] = TokenLabels.IgnoreIndex;   // the last token of A must not predict the first of B
        using var ids = Ids(packed);
        using var labelTensor = Ids(labels);
        using var segments = tensor(Enumerable.Repeat(0L, docA.Length).Concat(Enumerable.Repeat(1L, docB.Length)).ToArray(), [1, packed.Length]);
        using var logitsPacked = model.Forward(new ForwardBatch(ids, SegmentIds: segments));
        using var loss = CausalLmLoss.Mean(logitsPacked, labelTensor);
        double expected = (a.Sum + b.Sum) / (a.Count + b.Count);
        Assert.Equal(expected, loss.item<float>(), 1e-5);

        // Explicit restarting position ids give the same logits as the ones derived from the segments.
        using var positions = tensor(Enumerable.Range(0, docA.Length).Concat(Enumerable.Range(0, docB.Length)).Select(p => (long)p).ToArray(), [1, packed.Length]);
        using var explicitPositions = model.Forward(new ForwardBatch(ids, PositionIds: positions, SegmentIds: segments));
        Assert.True(MaxAbsDiff(logitsPacked, explicitPositions) < 1e-6);

        // Without segment ids the second document attends to the first, and the loss differs.
        using var unsegmented = model.Forward(new ForwardBatch(ids, PositionIds: positions));
        using var leaky = CausalLmLoss.Mean(unsegmented, labelTensor);
        Assert.True(Math.Abs(leaky.item<float>() - expected) > 1e-3);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    [InlineData("gemma")]
    [InlineData("gemma2")]
    [InlineData("phi3")]
    [InlineData("qwen3")]
    [InlineData("gemma3_text")]
    [InlineData("mixtral")]
    [InlineData("qwen3_moe")]
    public void KvCacheStepLogitsEqualFullRecomputation(string arch)
    {
        using var model = Preset(arch);
        // 6-token prompt and 14 steps: past the sliding windows of the mistral (8), gemma2 and gemma3 (4) presets.
        var context = Sequence(6, 256, 40).ToList();
        using var noGrad = no_grad();
        using var cache = new KvCache(model.Config.NumHiddenLayers);
        double worst = 0;
        for (int step = 0; step < 14; step++)
        {
            var input = step == 0 ? context.ToArray() : [context[^1]];
            using var cachedIds = Ids(input);
            using var cached = model.Forward(new ForwardBatch(cachedIds, Cache: cache));
            using var fullIds = Ids(context.ToArray());
            using var full = model.Forward(new ForwardBatch(fullIds));
            worst = Math.Max(worst, MaxAbsDiff(cached[0, -1], full[0, -1]));
            context.Add(full[0, -1].argmax().item<long>());
        }
        Assert.True(worst < 1e-4, $"{arch}: cached vs recomputed logits differ by {worst}");
        Assert.Equal(19, cache.Length);   // 6 prompt tokens + 13 fed back; the 14th choice is never fed

        var prompt = context.Take(6).ToArray();
        var options = new GenerationOptions { MaxNewTokens = 14 };
        var withCache = TokenGenerator.Generate(model, prompt, options);
        var withoutCache = TokenGenerator.Generate(model, prompt, options with { UseCache = false });
        Assert.Equal(withoutCache, withCache);
        Assert.Equal(context.Skip(6).Take(withCache.Count), withCache);
    }

    private static long[] Changed(long[] ids, int position)
    {
        var copy = ids.ToArray();
        copy[position] = copy[position] == 3 ? 4 : 3;
        return copy;
    }
}

/// <summary>init-model presets: every family has tiny and small, and the named ones have the real models' shapes.</summary>
public sealed class PresetTests
{
    /// <summary>Parameter count from the config alone (building an 8B model here would be too heavy).</summary>
    private static long CountParameters(ModelConfig c)
    {
        long h = c.HiddenSize, q = c.NumAttentionHeads * c.HeadDim, kv = c.NumKeyValueHeads * c.HeadDim;
        long attention = h * q + 2 * h * kv + q * h + (c.QkvBias ? q + 2 * kv : 0) + (c.OutputBias ? h : 0);
        long Mlp(int layer) => c.Moe is { } moe && moe.SparseLayers[layer]
            ? moe.NumExperts * (h + 3 * h * moe.ExpertIntermediateSize)   // router row + expert per expert
            : 3 * h * c.IntermediateSize;
        long norms = (c.SandwichNorms ? 4 : 2) * h + (c.QkNorm ? 2 * c.HeadDim : 0);
        long embeddings = (long)c.VocabSize * h * (c.TieWordEmbeddings ? 1 : 2);
        return embeddings + Enumerable.Range(0, c.NumHiddenLayers).Sum(i => attention + Mlp(i) + norms) + h;
    }

    [Theory]
    [InlineData("llama", "llama-3.1-8b", 8_030_261_248)]
    [InlineData("llama", "llama-3.2-1b", 1_235_814_400)]
    [InlineData("llama", "llama-2-7b", 6_738_415_616)]
    [InlineData("mistral", "mistral-7b", 7_248_023_552)]
    [InlineData("qwen2", "qwen2.5-0.5b", 494_032_768)]
    [InlineData("gemma", "gemma-2b", 2_506_172_416)]
    [InlineData("gemma2", "gemma-2-2b", 2_614_341_888)]
    [InlineData("phi3", "phi-3-mini", 3_821_079_552)]
    [InlineData("qwen3", "qwen3-0.6b", 596_049_920)]
    [InlineData("qwen3", "qwen3-8b", 8_190_735_360)]
    [InlineData("gemma3_text", "gemma-3-1b", 999_885_952)]
    [InlineData("gemma3_text", "gemma-3-4b", 3_880_263_168)]
    [InlineData("mixtral", "mixtral-8x7b", 46_702_792_704)]
    [InlineData("qwen3_moe", "qwen3-30b-a3b", 30_532_122_624)]
    public void NamedPresetsHaveTheRealModelsParameterCounts(string arch, string preset, long expected)
    {
        var config = ModelFamilies.ParseConfig(ModelFamilies.Get(arch, "test").Presets[preset], preset);
        Assert.Equal(expected, CountParameters(config));
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("qwen2")]
    [InlineData("gemma")]
    [InlineData("gemma2")]
    [InlineData("phi3")]
    [InlineData("qwen3")]
    [InlineData("gemma3_text")]
    [InlineData("mixtral")]
    [InlineData("qwen3_moe")]
    public void EveryFamilyHasTinyAndSmallPresetsThatBuild(string arch)
    {
        var family = ModelFamilies.Get(arch, "test");
        Assert.Contains("tiny", family.Presets.Keys);
        Assert.Contains("small", family.Presets.Keys);
        var small = ModelFamilies.ParseConfig(family.Presets["small"], "small");
        using var model = new CausalLM(small, ScalarType.Float32);
        long count = model.parameters().Sum(p => p.numel());
        Assert.Equal(CountParameters(small), count);
        Assert.InRange(count, 20_000_000, 80_000_000);
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("mistral")]
    [InlineData("gemma2")]
    [InlineData("phi3")]
    [InlineData("gemma3_text")]
    [InlineData("mixtral")]
    public void CausalFastPathEqualsTheExplicitMask(string arch)
    {
        // No mask → SDPA's is_causal path (flash attention on CUDA); an all-ones mask → the explicit additive mask.
        using var model = Build(TinyConfig(arch, j =>
        {
            if (arch is "mistral" or "gemma2" or "gemma3_text" or "mixtral") j["sliding_window"] = 4;
            if (arch is "gemma3_text") { j["head_dim"] = 8; j["sliding_window_pattern"] = 2; }
            if (arch is "mixtral") j["num_local_experts"] = 4;
        }));
        var ids = Sequence(12, 64, seed: 4);
        using var noGrad = no_grad();
        using var batch = tensor(ids, [1, ids.Length]);
        using var ones = ones_like(batch);
        using var fast = model.Forward(new ForwardBatch(batch));
        using var masked = model.Forward(new ForwardBatch(batch, ones));
        Assert.True(MaxAbsDiff(fast, masked) < 1e-5, $"{arch}: {MaxAbsDiff(fast, masked)}");
    }
}
