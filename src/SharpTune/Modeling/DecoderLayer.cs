using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// Pre-norm decoder block: x + attn(norm(x)), then x + mlp(norm(x)). Gemma2 and Gemma 3 add a norm after attention and
/// around the MLP (pre_feedforward_layernorm / post_feedforward_layernorm). The MLP is dense, or a mixture of experts
/// (Mixtral's block_sparse_moe, Qwen3-MoE's mlp on its sparse layers), which also returns its router logits.
/// </summary>
public sealed class DecoderLayer : nn.Module
{
    private readonly Attention self_attn;
    private readonly nn.Module? mlp;
    private readonly SparseMoeBlock? block_sparse_moe;
    private readonly RmsNorm input_layernorm, post_attention_layernorm;
    private readonly RmsNorm? pre_feedforward_layernorm, post_feedforward_layernorm;
    private readonly bool sandwich;

    public DecoderLayer(ModelConfig config, int layerIndex, ScalarType dtype) : base(nameof(DecoderLayer))
    {
        self_attn = config.FusedProjections ? new FusedQkvAttention(config, layerIndex, dtype) : new SplitQkvAttention(config, layerIndex, dtype);
        if (config.Moe is { Layout: MoeLayout.Mixtral }) block_sparse_moe = new SparseMoeBlock(config, dtype);
        else if (config.Moe is { } moe && moe.SparseLayers[layerIndex]) mlp = new SparseMoeBlock(config, dtype);
        else mlp = config.FusedProjections ? new FusedGatedMlp(config, dtype) : new GatedMlp(config, dtype);
        input_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, config.NormStyle, dtype);
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, config.NormStyle, dtype);
        sandwich = config.SandwichNorms;
        if (sandwich)
        {
            pre_feedforward_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, config.NormStyle, dtype);
            post_feedforward_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEps, config.NormStyle, dtype);
        }
        RegisterComponents();
    }

    /// <summary>Whether this layer's MLP is a mixture of experts (and so returns router logits).</summary>
    public bool IsSparse => (block_sparse_moe ?? mlp) is SparseMoeBlock;

    /// <summary>The layer's output (B, T, H) and, on sparse layers, the router logits (B·T, E).</summary>
    public (Tensor Hidden, Tensor? RouterLogits) Forward(Tensor x, AttentionInputs inputs)
    {
        using var scope = NewDisposeScope();
        var h = self_attn.Forward(input_layernorm.call(x), inputs);
        Tensor? routerLogits;
        if (sandwich)
        {
            x = x + post_attention_layernorm.call(h);
            (h, routerLogits) = FeedForward(pre_feedforward_layernorm!.call(x));
            x = x + post_feedforward_layernorm!.call(h);
        }
        else
        {
            x = x + h;
            (h, routerLogits) = FeedForward(post_attention_layernorm.call(x));
            x = x + h;
        }
        return (x.MoveToOuterDisposeScope(), routerLogits?.MoveToOuterDisposeScope());
    }

    private (Tensor, Tensor?) FeedForward(Tensor x) => (block_sparse_moe ?? mlp) switch
    {
        SparseMoeBlock moe => moe.Forward(x),
        nn.Module<Tensor, Tensor> dense => (dense.call(x), null),
        _ => throw new InvalidOperationException("decoder layer without an MLP"),
    };
}
