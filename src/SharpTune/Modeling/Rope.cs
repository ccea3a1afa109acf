using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// Rotary position embedding with the scalings of transformers' modeling_rope_utils: default, linear, dynamic (NTK),
/// llama3, yarn and longrope. Works on the first RotaryDim channels of each head (partial rotary for Phi).
/// </summary>
public sealed class RotaryEmbedding
{
    private readonly ModelConfig config;
    private readonly int dim;
    private readonly float[] staticInvFreq;
    private readonly double attentionScaling;

    public RotaryEmbedding(ModelConfig config)
    {
        this.config = config;
        dim = config.RotaryDim;
        var scaling = config.RopeScaling;
        staticInvFreq = scaling?.Type switch
        {
            "linear" => InvFreq(config.RopeTheta).Select(f => f / scaling.Factor).ToFloats(),
            "llama3" => Llama3InvFreq(scaling),
            "yarn" => YarnInvFreq(scaling),
            _ => InvFreq(config.RopeTheta).ToFloats(),
        };
        attentionScaling = scaling?.Type switch
        {
            "yarn" => scaling.AttentionFactor ?? 0.1 * Math.Log(scaling.Factor) + 1.0,
            "longrope" => scaling.AttentionFactor ?? LongRopeScaling(),
            _ => 1.0,
        };
    }

    /// <summary>cos and sin for the given positions: (B, T, RotaryDim) in the compute dtype.</summary>
    public (Tensor Cos, Tensor Sin) Compute(Tensor positionIds, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var invFreq = tensor(InvFreqFor(positionIds.max().item<long>() + 1), device: positionIds.device);
        var freqs = positionIds.to(float32).unsqueeze(-1) * invFreq;        // (B, T, dim/2)
        var emb = cat([freqs, freqs], -1);                                    // (B, T, dim)
        var cos = (emb.cos() * attentionScaling).to(dtype);
        var sin = (emb.sin() * attentionScaling).to(dtype);
        return (cos.MoveToOuterDisposeScope(), sin.MoveToOuterDisposeScope());
    }

    /// <summary>x·cos + rotate_half(x)·sin on the rotary channels; x is (B, nh, T, hs), cos/sin (B, T, rot).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin, int rotaryDim)
    {
        using var scope = NewDisposeScope();
        var c = cos.unsqueeze(1);
        var s = sin.unsqueeze(1);
        var headDim = x.shape[^1];
        var rot = rotaryDim == headDim ? x : x[.., .., .., ..rotaryDim];
        var half = rotaryDim / 2;
        // rotate_half(x)·sin = (x₂, x₁)·(−sin₁, sin₂): the sign moves onto the small sin table and the half swap is one
        // roll, so the activation-sized negated half and its concatenation are never made; the products round as before.
        var signedSin = cat([-s[.., .., .., ..half], s[.., .., .., half..]], -1);
        var embedded = addcmul(rot * c, rot.roll(half, -1), signedSin, 1);
        if (rotaryDim != headDim) embedded = cat([embedded, x[.., .., .., rotaryDim..]], -1);
        return embedded.MoveToOuterDisposeScope();
    }

    /// <summary>Multiplier on cos and sin (yarn's and longrope's attention factor; 1 otherwise).</summary>
    internal double AttentionScaling => attentionScaling;

    /// <summary>Inverse frequencies (RotaryDim/2) for a forward whose largest position is seqLen − 1.</summary>
    internal float[] InvFreqFor(long seqLen)
    {
        var scaling = config.RopeScaling;
        if (scaling?.Type is not ("dynamic" or "longrope")) return staticInvFreq;
        if (scaling.Type == "longrope")
        {
            int original = scaling.OriginalMaxPositionEmbeddings ?? config.MaxPositionEmbeddings;
            var factors = seqLen > original ? scaling.LongFactor : scaling.ShortFactor;
            if (factors is null || factors.Length != dim / 2)
                throw new InvalidInputException($"config.json: rope_scaling longrope needs short_factor and long_factor lists of length {dim / 2}");
            return InvFreq(config.RopeTheta).Select((f, i) => f / factors[i]).ToFloats();
        }
        // transformers (modeling_rope_utils) measures dynamic NTK against max_position_embeddings, not an original length.
        int maxPositions = config.MaxPositionEmbeddings;
        if (seqLen <= maxPositions) return staticInvFreq;
        // Dynamic NTK: grow the base with the sequence length.
        double factor = scaling.Factor;
        double theta = config.RopeTheta * Math.Pow(factor * seqLen / maxPositions - (factor - 1), dim / (dim - 2.0));
        return InvFreq(theta).ToFloats();
    }

    private IEnumerable<double> InvFreq(double theta) =>
        Enumerable.Range(0, dim / 2).Select(i => 1.0 / Math.Pow(theta, (float)(2 * i) / dim));

    private float[] Llama3InvFreq(RopeScaling s)
    {
        double original = s.OriginalMaxPositionEmbeddings ?? 8192;
        double lowFreqWavelen = original / s.LowFreqFactor;
        double highFreqWavelen = original / s.HighFreqFactor;
        return InvFreq(config.RopeTheta).Select(f =>
        {
            double wavelen = 2 * Math.PI / f;
            if (wavelen < highFreqWavelen) return f;
            if (wavelen > lowFreqWavelen) return f / s.Factor;
            double smooth = (original / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            return (1 - smooth) * f / s.Factor + smooth * f;
        }).ToFloats();
    }

    private float[] YarnInvFreq(RopeScaling s)
    {
        // transformers 4.44-4.46 take the correction range from max_position_embeddings.
        double original = config.MaxPositionEmbeddings;
        double CorrectionDim(double rotations) => dim * Math.Log(original / (rotations * 2 * Math.PI)) / (2 * Math.Log(config.RopeTheta));
        double low = Math.Max(Math.Floor(CorrectionDim(s.BetaFast)), 0);
        double high = Math.Min(Math.Ceiling(CorrectionDim(s.BetaSlow)), dim - 1);
        if (low == high) high += 0.001;
        return InvFreq(config.RopeTheta).Select((extrapolation, i) =>
        {
            double ramp = Math.Clamp((i - low) / (high - low), 0, 1);
            double extrapolationFactor = 1 - ramp;
            double interpolation = extrapolation / s.Factor;
            return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
        }).ToFloats();
    }

    private double LongRopeScaling()
    {
        int original = config.RopeScaling?.OriginalMaxPositionEmbeddings ?? config.MaxPositionEmbeddings;
        double factor = (double)config.MaxPositionEmbeddings / original;
        return factor <= 1 ? 1.0 : Math.Sqrt(1 + Math.Log(factor) / Math.Log(original));
    }
}

internal static class DoubleSequenceExtensions
{
    public static float[] ToFloats(this IEnumerable<double> values) => values.Select(v => (float)v).ToArray();
}
