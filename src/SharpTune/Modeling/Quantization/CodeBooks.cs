using static TorchSharp.torch;

namespace SharpTune.Modeling.Quantization;

/// <summary>The code books of bitsandbytes: value i of a book is what 4-bit (or 8-bit) code i dequantizes to, times absmax.</summary>
public static class CodeBooks
{
    /// <summary>
    /// NormalFloat-4 of the QLoRA paper (bitsandbytes get_4bit_type("nf4")): quantiles of N(0,1) scaled to [-1, 1],
    /// with an exact zero. Stored as float32, as bitsandbytes does.
    /// </summary>
    public static IReadOnlyList<float> Nf4 { get; } =
    [
        -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
        -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
        0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
        0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
    ];

    /// <summary>
    /// bitsandbytes' FP4 (1 sign, 2 exponent, 1 mantissa bit; get_4bit_type("fp4")): [0, 0.0625, 8, 12, 4, 6, 2, 3] and
    /// their negatives (bit 3 is the sign), divided in float32 by the largest magnitude 12.
    /// </summary>
    public static IReadOnlyList<float> Fp4 { get; } =
        new[] { 0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f, -0f, -0.0625f, -8f, -12f, -4f, -6f, -2f, -3f }.Select(v => v / 12f).ToArray();

    /// <summary>
    /// bitsandbytes' signed dynamic 8-bit map (create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)), used
    /// for double quantization of absmax: for exponent e = 0..6, the midpoints of linspace(0.1, 1, 2^e + 1) times 10^(e-6),
    /// both signs, plus 0 and 1, sorted. Built with the same float32 torch ops, so the values are bit-identical.
    /// </summary>
    public static IReadOnlyList<float> DynamicSigned { get; } = BuildDynamicSigned();

    public static IReadOnlyList<float> For(FourBitType type) => type == FourBitType.Nf4 ? Nf4 : Fp4;

    private static float[] BuildDynamicSigned()
    {
        const int maxExponentBits = 7;
        var data = new List<float>();
        for (var i = 0; i < maxExponentBits; i++)
        {
            var fractionItems = (1 << i) + 1;
            using var boundaries = linspace(0.1, 1.0, fractionItems, ScalarType.Float32);
            using var sum = boundaries.narrow(0, 0, fractionItems - 1) + boundaries.narrow(0, 1, fractionItems - 1);
            using var means = sum / 2.0;
            var scale = Math.Pow(10, -(maxExponentBits - 1) + i);
            using var positive = means * scale;
            using var negative = means * -scale;
            data.AddRange(positive.data<float>().ToArray());
            data.AddRange(negative.data<float>().ToArray());
        }
        data.Add(0f);
        data.Add(1f);
        if (data.Count != 256) throw new InvalidOperationException($"dynamic map has {data.Count} values, expected 256");
        data.Sort();
        return data.ToArray();
    }
}
