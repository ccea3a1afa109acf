using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// What every layer's attention needs for one forward: rotary tables, masks and the optional cache. A null mask means
/// plain causal attention (no padding, no packed documents, no cache): SDPA's is_causal path, which CUDA runs as flash
/// attention and which needs no (T × T) mask in memory. SlidingCos/SlidingSin, when set, are the rotary tables of the
/// sliding layers (Gemma 3's local RoPE base).
/// </summary>
public sealed record AttentionInputs(Tensor Cos, Tensor Sin, Tensor? FullMask, Tensor? SlidingMask, KvCache? Cache, Tensor? SlidingCos = null, Tensor? SlidingSin = null);

/// <summary>
/// Multi-head attention with grouped KV heads, rotary positions, optional sliding window and logit soft-capping.
/// Subclasses only say how q, k and v are projected (separate q/k/v_proj, or Phi-3's fused qkv_proj).
/// </summary>
public abstract class Attention : nn.Module
{
    protected readonly ModelConfig Config;
    private readonly int layerIndex;

    protected Attention(ModelConfig config, int layerIndex) : base("Attention")
    {
        Config = config;
        this.layerIndex = layerIndex;
    }

    /// <summary>(B, T, nh·hs), (B, T, nkv·hs), (B, T, nkv·hs)</summary>
    protected abstract (Tensor Q, Tensor K, Tensor V) ProjectQkv(Tensor x);

    protected abstract Tensor ProjectOutput(Tensor x);

    public Tensor Forward(Tensor x, AttentionInputs inputs)
    {
        using var scope = NewDisposeScope();
        long batch = x.shape[0], time = x.shape[1];
        int nh = Config.NumAttentionHeads, nkv = Config.NumKeyValueHeads, hs = Config.HeadDim;
        var (q, k, v) = ProjectQkv(x);
        q = q.view(batch, time, nh, hs).transpose(1, 2);   // (B, nh, T, hs)
        k = k.view(batch, time, nkv, hs).transpose(1, 2);  // (B, nkv, T, hs)
        v = v.view(batch, time, nkv, hs).transpose(1, 2);  // (B, nkv, T, hs)
        bool slidingLayer = Config.SlidingLayers[layerIndex];
        var (cos, sin) = slidingLayer && inputs.SlidingCos is not null ? (inputs.SlidingCos, inputs.SlidingSin!) : (inputs.Cos, inputs.Sin);
        q = RotaryEmbedding.Apply(q, cos, sin, Config.RotaryDim);
        k = RotaryEmbedding.Apply(k, cos, sin, Config.RotaryDim);
        if (inputs.Cache is { } cache) (k, v) = cache.Append(layerIndex, k, v);
        if (Config.KvGroups > 1)
        {
            k = k.repeat_interleave(Config.KvGroups, 1);   // (B, nh, Tk, hs)
            v = v.repeat_interleave(Config.KvGroups, 1);
        }
        var mask = slidingLayer && inputs.SlidingMask is not null ? inputs.SlidingMask : inputs.FullMask;
        var y = Config.AttnLogitSoftcapping is { } cap
            ? EagerSoftcapped(q, k, v, mask ?? throw new InvalidOperationException("soft-capped attention needs an explicit mask"), cap)
            : ScaledDotProduct(q, k, v, mask);
        y = y.transpose(1, 2).reshape(batch, time, nh * hs); // (B, T, nh·hs)
        return ProjectOutput(y).MoveToOuterDisposeScope();
    }

    private Tensor ScaledDotProduct(Tensor q, Tensor k, Tensor v, Tensor? mask)
    {
        // TorchSharp's SDPA has no scale argument and always divides by sqrt(hs): fold the model's scale into q.
        double qScale = Config.AttentionScale * Math.Sqrt(Config.HeadDim);
        if (Math.Abs(qScale - 1.0) > 1e-12) q = q * qScale;
        return mask is null
            ? nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true)
            : nn.functional.scaled_dot_product_attention(q, k, v, mask);
    }

    private Tensor EagerSoftcapped(Tensor q, Tensor k, Tensor v, Tensor mask, double cap)
    {
        var scores = q.matmul(k.transpose(2, 3)) * Config.AttentionScale;   // (B, nh, T, Tk)
        scores = (scores / cap).tanh() * cap;
        scores = scores + mask;
        var probs = scores.softmax(-1, float32).to(q.dtype);
        return probs.matmul(v);
    }
}

/// <summary>
/// Separate q_proj, k_proj, v_proj, o_proj (Llama, Mistral, Qwen2, Gemma, Gemma2), with Qwen3's and Gemma 3's per-head
/// q_norm / k_norm: one [head_dim] RMSNorm weight shared by all heads, applied after the projection.
/// </summary>
public sealed class SplitQkvAttention : Attention
{
    private readonly nn.Module<Tensor, Tensor> q_proj, k_proj, v_proj, o_proj;
    private readonly RmsNorm? q_norm, k_norm;

    public SplitQkvAttention(ModelConfig config, int layerIndex, ScalarType dtype) : base(config, layerIndex)
    {
        int q = config.NumAttentionHeads * config.HeadDim, kv = config.NumKeyValueHeads * config.HeadDim;
        q_proj = new LinearLayer(config.HiddenSize, q, config.QkvBias, dtype);
        k_proj = new LinearLayer(config.HiddenSize, kv, config.QkvBias, dtype);
        v_proj = new LinearLayer(config.HiddenSize, kv, config.QkvBias, dtype);
        o_proj = new LinearLayer(q, config.HiddenSize, config.OutputBias, dtype);
        if (config.QkNorm)
        {
            q_norm = new RmsNorm(config.HeadDim, config.RmsNormEps, config.NormStyle, dtype);
            k_norm = new RmsNorm(config.HeadDim, config.RmsNormEps, config.NormStyle, dtype);
        }
        RegisterComponents();
    }

    protected override (Tensor Q, Tensor K, Tensor V) ProjectQkv(Tensor x)
    {
        Tensor q = q_proj.call(x), k = k_proj.call(x), v = v_proj.call(x);
        if (q_norm is null) return (q, k, v);
        return (PerHead(q_norm, q), PerHead(k_norm!, k), v);
    }

    /// <summary>(B, T, n·hs) normalised over each head's hs channels.</summary>
    private Tensor PerHead(RmsNorm norm, Tensor x)
    {
        long batch = x.shape[0], time = x.shape[1];
        return norm.call(x.view(batch, time, -1, Config.HeadDim)).view(batch, time, -1);   // via (B, T, n, hs)
    }

    protected override Tensor ProjectOutput(Tensor x) => o_proj.call(x);
}
