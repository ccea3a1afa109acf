using System.Text.Json.Nodes;
using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Tests.Modeling;

/// <summary>
/// Rotary scalings against values computed once in Python (float64) from the formulas of transformers 4.44's
/// modeling_rope_utils (head_dim 16, so 8 inverse frequencies). Tolerance is relative 1e-6: transformers itself
/// computes in float32.
/// </summary>
public sealed class RopeTests
{
    private static RotaryEmbedding Rope(double theta, int maxPositions, JsonObject? scaling, Action<JsonObject>? edit = null)
    {
        var json = new JsonObject
        {
            ["model_type"] = "llama", ["vocab_size"] = 32, ["hidden_size"] = 64, ["intermediate_size"] = 64, ["num_hidden_layers"] = 1,
            ["num_attention_heads"] = 4, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = maxPositions, ["rope_theta"] = theta,
            ["rope_scaling"] = scaling,
        };
        edit?.Invoke(json);
        return new RotaryEmbedding(ModelFamilies.ParseConfig(json, "test"));
    }

    private static void AssertClose(double[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-6 * Math.Abs(expected[i]), $"inv_freq[{i}] = {actual[i]:E9}, expected {expected[i]:E9}");
    }

    [Fact]
    public void DefaultInverseFrequencies()
    {
        AssertClose([1.0, 3.162277660e-01, 1e-1, 3.162277660e-02, 1e-2, 3.162277660e-03, 1e-3, 3.162277660e-04], Rope(10000, 128, null).InvFreqFor(10));
    }

    [Fact]
    public void Llama3ScalingKeepsHighFrequenciesDividesLowOnesAndSmoothsBetween()
    {
        // Llama 3.1's rope_scaling: wavelengths < 2048 untouched (i 0..3), > 8192 divided by 8 (i 5..7), i 4 smoothed.
        var rope = Rope(500000, 131072, new JsonObject
        {
            ["rope_type"] = "llama3", ["factor"] = 8.0, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
        });
        AssertClose([1.000000000e+00, 1.939227447e-01, 3.760603093e-02, 7.292664737e-03, 5.248461610e-04, 3.428102196e-05, 6.647869871e-06, 1.289173172e-06], rope.InvFreqFor(10));
        Assert.Equal(1.0, rope.AttentionScaling);
    }

    [Fact]
    public void LinearScalingDividesEveryFrequency()
    {
        var rope = Rope(10000, 128, new JsonObject { ["type"] = "linear", ["factor"] = 2.0 });
        AssertClose([5.0e-01, 1.581138830e-01, 5.0e-02, 1.581138830e-02, 5.0e-03, 1.581138830e-03, 5.0e-04, 1.581138830e-04], rope.InvFreqFor(10));
    }

    [Fact]
    public void DynamicNtkGrowsTheBaseOnlyPastMaxPositionEmbeddings()
    {
        // max_position_embeddings 16, factor 2, 32 positions: base = 10000 · (2·32/16 − 1)^(16/14) = 35097.924...
        var rope = Rope(10000, 16, new JsonObject { ["rope_type"] = "dynamic", ["factor"] = 2.0 });
        AssertClose([1.0, 3.162277660e-01, 1e-1, 3.162277660e-02, 1e-2, 3.162277660e-03, 1e-3, 3.162277660e-04], rope.InvFreqFor(16));
        AssertClose([1.000000000e+00, 2.702961257e-01, 7.305999556e-02, 1.974783374e-02, 5.337762952e-03, 1.442776646e-03, 3.899769376e-04, 1.054092553e-04], rope.InvFreqFor(32));

        // Through Compute: the angle at position 1 of a 32-position forward is the scaled inverse frequency.
        using var positions = arange(0, 32, int64).unsqueeze(0);
        var (cos, sin) = rope.Compute(positions, ScalarType.Float32);
        using (cos)
        using (sin)
        {
            Assert.Equal(Math.Cos(2.702961257e-01), cos[0, 1, 1].item<float>(), 6);
            Assert.Equal(Math.Sin(2.702961257e-01), sin[0, 1, 9].item<float>(), 6);   // second half repeats the first
        }
    }

    [Fact]
    public void YarnRampsBetweenInterpolationAndExtrapolationAndScalesAttention()
    {
        // max_position_embeddings 256, factor 4, beta 32/1: correction range [0, 4].
        var rope = Rope(10000, 256, new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0 });
        AssertClose([1.000000000e+00, 2.569350599e-01, 6.250000000e-02, 1.383496476e-02, 2.500000000e-03, 7.905694150e-04, 2.500000000e-04, 7.905694150e-05], rope.InvFreqFor(10));
        Assert.Equal(1.138629436111989, rope.AttentionScaling, 12);   // 0.1 · ln 4 + 1
        using var positions = zeros(1, 1, dtype: int64);
        var (cos, sin) = rope.Compute(positions, ScalarType.Float32);
        using (cos)
        using (sin) Assert.Equal(1.138629436111989, cos[0, 0, 3].item<float>(), 6);   // cos(0) · attention factor

        var explicitFactor = Rope(10000, 256, new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4.0, ["attention_factor"] = 1.5 });
        Assert.Equal(1.5, explicitFactor.AttentionScaling);
    }

    [Fact]
    public void LongRopePicksShortOrLongFactorsBySequenceLength()
    {
        double[] shortFactor = [1.0, 1.5, 2, 2.5, 3, 3.5, 4, 4.5];
        var rope = Rope(10000, 512, new JsonObject
        {
            ["type"] = "longrope",
            ["short_factor"] = new JsonArray(shortFactor.Select(f => (JsonNode)f).ToArray()),
            ["long_factor"] = new JsonArray(Enumerable.Repeat((JsonNode)2.0, 8).Select(n => n.DeepClone()).ToArray()),
        }, j => j["original_max_position_embeddings"] = 128);
        AssertClose([1.000000000e+00, 2.108185107e-01, 5.000000000e-02, 1.264911064e-02, 3.333333333e-03, 9.035079029e-04, 2.500000000e-04, 7.027283689e-05], rope.InvFreqFor(128));
        AssertClose([5.0e-01, 1.581138830e-01, 5.0e-02, 1.581138830e-02, 5.0e-03, 1.581138830e-03, 5.0e-04, 1.581138830e-04], rope.InvFreqFor(129));
        Assert.Equal(1.1338934190276817, rope.AttentionScaling, 12);   // sqrt(1 + ln(512/128) / ln 128)
    }

    [Fact]
    public void UnknownRopeTypeListsSupportedTypes()
    {
        var error = Assert.Throws<InvalidInputException>(() => Rope(10000, 128, new JsonObject { ["rope_type"] = "ntk-by-parts", ["factor"] = 2.0 }));
        Assert.Equal("test: rope_scaling type 'ntk-by-parts' is not supported; supported: default, linear, dynamic, llama3, yarn, longrope", error.Message);
    }
}
