using System.Text.Json.Nodes;
using SharpTune.Modeling;
using static TorchSharp.torch;
using static SharpTune.Tests.Modeling.TinyModels;

namespace SharpTune.Tests.Modeling;

/// <summary>Mixture-of-experts semantics (Mixtral, Qwen3-MoE): routing, checkpoint names, sparse-layer choice, the load-balancing loss.</summary>
public sealed class MoeTests
{
    private static JsonObject MoeConfig(string type, Action<JsonObject>? edit = null) => TinyConfig(type, j =>
    {
        j["num_local_experts"] = 4;   // mixtral
        j["num_experts"] = 6;         // qwen3_moe
        j["moe_intermediate_size"] = 24;
        j["num_experts_per_tok"] = 2;
        j["head_dim"] = 8;
        edit?.Invoke(j);
    });

    private static SparseMoeBlock Block(CausalLM model, int layer) =>
        (SparseMoeBlock)model.named_modules().Single(m => m.module is SparseMoeBlock && m.name.StartsWith($"model.layers.{layer}.", StringComparison.Ordinal)).module;

    /// <summary>The block's output computed token by token, the way the definition reads.</summary>
    private static Tensor PerTokenReference(CausalLM model, string block, string[] names, int topK, bool renormalise, Tensor x)
    {
        var p = model.named_parameters().ToDictionary(n => n.name, n => n.parameter);
        var rows = new List<Tensor>();
        foreach (var token in x.reshape(-1, x.shape[^1]).split(1, 0))
        {
            var probs = nn.functional.linear(token, p[$"{block}.gate.weight"]).softmax(-1)[0];
            var (weights, experts) = probs.topk(topK);
            if (renormalise) weights = weights / weights.sum();
            var y = zeros_like(token);
            for (int i = 0; i < topK; i++)
            {
                string e = $"{block}.experts.{experts[i].item<long>()}";
                var h = nn.functional.silu(nn.functional.linear(token, p[$"{e}.{names[0]}.weight"])) * nn.functional.linear(token, p[$"{e}.{names[1]}.weight"]);
                y = y + weights[i] * nn.functional.linear(h, p[$"{e}.{names[2]}.weight"]);
            }
            rows.Add(y);
        }
        return cat(rows, 0).view(x.shape);
    }

    [Theory]
    [InlineData("mixtral", true)]
    [InlineData("qwen3_moe", true)]
    [InlineData("qwen3_moe", false)]
    public void BatchedExpertsEqualThePerTokenDefinition(string type, bool normTopK)
    {
        using var model = Build(MoeConfig(type, j => j["norm_topk_prob"] = normTopK), seed: 13);
        bool mixtral = type == "mixtral";
        string block = mixtral ? "model.layers.1.block_sparse_moe" : "model.layers.1.mlp";
        string[] names = mixtral ? ["w1", "w3", "w2"] : ["gate_proj", "up_proj", "down_proj"];
        using var noGrad = no_grad();
        using var x = randn(3, 7, 32, generator: new Generator(5));
        var (output, logits) = Block(model, 1).Forward(x);
        using var expected = PerTokenReference(model, block, names, 2, mixtral || normTopK, x);
        Assert.Equal(new long[] { 21, mixtral ? 4 : 6 }, logits.shape);
        Assert.True(MaxAbsDiff(expected, output) < 1e-5, $"{type}: {MaxAbsDiff(expected, output)}");
        Assert.True(expected.abs().max().item<float>() > 0.1);
    }

    [Fact]
    public void CheckpointNamesAreTransformers()
    {
        using var mixtral = Build(MoeConfig("mixtral"));
        var names = mixtral.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.block_sparse_moe.gate.weight", names);
        Assert.Contains("model.layers.1.block_sparse_moe.experts.3.w1.weight", names);
        Assert.Contains("model.layers.1.block_sparse_moe.experts.3.w2.weight", names);
        Assert.Contains("model.layers.1.block_sparse_moe.experts.3.w3.weight", names);
        Assert.DoesNotContain(names, n => n.Contains(".mlp.", StringComparison.Ordinal));
        Assert.Equal(new long[] { 48, 32 }, mixtral.named_parameters().Single(p => p.name == "model.layers.0.block_sparse_moe.experts.0.w1.weight").parameter.shape);
        // per layer: 4 attention + 1 router + 4 experts × 3 + 2 norms; + embed_tokens, norm, lm_head
        Assert.Equal(2 * 19 + 3, names.Count);

        using var qwen = Build(MoeConfig("qwen3_moe"));
        var qnames = qwen.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.mlp.gate.weight", qnames);
        Assert.Contains("model.layers.0.mlp.experts.5.down_proj.weight", qnames);
        Assert.Contains("model.layers.0.self_attn.q_norm.weight", qnames);
        Assert.Equal(new long[] { 24, 32 }, qwen.named_parameters().Single(p => p.name == "model.layers.1.mlp.experts.2.up_proj.weight").parameter.shape);
        Assert.Equal(new long[] { 8 }, qwen.named_parameters().Single(p => p.name == "model.layers.1.self_attn.k_norm.weight").parameter.shape);
    }

    [Fact]
    public void Qwen3MoeMlpOnlyLayersAndSparseStepGetTheDenseMlp()
    {
        // decoder_sparse_step 2: layers 1 and 3 sparse; mlp_only_layers [3] makes 3 dense again.
        var config = ModelFamilies.ParseConfig(MoeConfig("qwen3_moe", j => { j["num_hidden_layers"] = 4; j["decoder_sparse_step"] = 2; j["mlp_only_layers"] = new JsonArray(3); }), "test");
        Assert.Equal([false, true, false, false], config.Moe!.SparseLayers);
        using var model = new CausalLM(config, ScalarType.Float32);
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        Assert.Contains("model.layers.0.mlp.gate_proj.weight", names);
        Assert.Equal(new long[] { 48, 32 }, model.named_parameters().Single(p => p.name == "model.layers.3.mlp.up_proj.weight").parameter.shape);
        Assert.Contains("model.layers.1.mlp.experts.0.gate_proj.weight", names);
        Assert.DoesNotContain("model.layers.2.mlp.gate.weight", names);
        RandomWeights.Initialize(model, 3);
        model.eval();
        using var ids = Ids(Sequence(9, 64, 3));
        using var noGrad = no_grad();
        var output = model.HiddenAndRouterLogits(new ForwardBatch(ids));
        Assert.Single(output.RouterLogits);   // only the sparse layer routes

        var dense = ModelFamilies.ParseConfig(MoeConfig("qwen3_moe", j => j["num_experts"] = 0), "test");
        Assert.Null(dense.Moe);
    }

    [Fact]
    public void MoeDefaultsMatchTransformers()
    {
        var mixtral = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "mixtral" }, "test");
        Assert.Equal((8, 2, 14336, true, false, 0.001, 1e6, (int?)null, 1e-5), (mixtral.Moe!.NumExperts, mixtral.Moe.TopK, mixtral.Moe.ExpertIntermediateSize, mixtral.Moe.NormTopKProb, mixtral.Moe.OutputRouterLogits, mixtral.Moe.RouterAuxLossCoef, mixtral.RopeTheta, mixtral.SlidingWindow, mixtral.RmsNormEps));
        var qwen = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "qwen3_moe" }, "test");
        Assert.Equal((128, 8, 768, false, 64, 4, true, false), (qwen.Moe!.NumExperts, qwen.Moe.TopK, qwen.Moe.ExpertIntermediateSize, qwen.Moe.NormTopKProb, qwen.HeadDim, qwen.NumKeyValueHeads, qwen.QkNorm, qwen.QkvBias));
        Assert.All(qwen.Moe.SparseLayers, Assert.True);
        var withWindow = ModelFamilies.ParseConfig(new JsonObject { ["model_type"] = "mixtral", ["num_hidden_layers"] = 2, ["sliding_window"] = 16 }, "test");
        Assert.Equal([true, true], withWindow.SlidingLayers);
    }

    [Fact]
    public void LoadBalancingLossSkipsPaddedTokensAsIfTheyWereAbsent()
    {
        using var model = Build(MoeConfig("mixtral"), seed: 17);
        var moe = model.Config.Moe!;
        using var ids = tensor(Sequence(2 * 10, 64, 9), [2, 10]);
        using var noGrad = no_grad();
        var logits = model.HiddenAndRouterLogits(new ForwardBatch(ids)).RouterLogits;
        Assert.Equal(2, logits.Count);
        // Row 1's last 4 positions are padding: the masked loss equals the unmasked loss over the 16 real rows only.
        var maskValues = Enumerable.Repeat(1L, 10).Concat(Enumerable.Repeat(1L, 6)).Concat(Enumerable.Repeat(0L, 4)).ToArray();
        using var mask = tensor(maskValues, [2, 10]);
        using var keep = tensor(Enumerable.Range(0, 20).Where(i => maskValues[i] == 1).Select(i => (long)i).ToArray());
        using var masked = LoadBalancingLoss.Compute(logits, moe.NumExperts, moe.TopK, mask);
        using var real = LoadBalancingLoss.Compute(logits.Select(l => l.index_select(0, keep)).ToList(), moe.NumExperts, moe.TopK, null);
        using var unmasked = LoadBalancingLoss.Compute(logits, moe.NumExperts, moe.TopK, null);
        Assert.Equal(real.item<float>(), masked.item<float>(), 5);
        Assert.True(Math.Abs(unmasked.item<float>() - masked.item<float>()) > 1e-4);
        // Uniform router probabilities give exactly top_k, whichever experts the ties pick: E · Σ f · (1/E) = Σ f = k.
        using var uniform = LoadBalancingLoss.Compute([zeros(8, 4)], 4, 2, null);
        Assert.Equal(2.0f, uniform.item<float>(), 6);
    }
}
