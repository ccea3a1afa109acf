using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// bitsandbytes' block-wise 8-bit quantization of optimizer state: a tensor is cut into blocks of
/// <see cref="BlockSize"/> values, each block is divided by its absolute maximum, and every value becomes the index of
/// the nearest entry of a 256-entry dynamic map (dynamic tree quantization: a decimal exponent plus a linear fraction,
/// so small values keep their relative precision). Storage: one byte per value plus one float32 per block.
/// </summary>
public sealed class BlockwiseQuantizer
{
    public const int BlockSize = 2048;

    /// <summary>The 256 map values, ascending (float32).</summary>
    public float[] Map { get; }
    /// <summary>Half the widest gap between neighbouring map values: the worst rounding error, relative to a block's absmax.</summary>
    public double MaxHalfGap { get; }

    private readonly float[] midpoints;

    public BlockwiseQuantizer(bool signed)
    {
        Map = DynamicMap(signed);
        midpoints = new float[Map.Length - 1];
        double gap = 0;
        for (int i = 0; i < midpoints.Length; i++)
        {
            midpoints[i] = (Map[i] + Map[i + 1]) / 2;
            // The signed map stops at its smallest negative entry, the unsigned one at 0; only [-1, 1] (or [0, 1]) is used.
            gap = Math.Max(gap, (Map[i + 1] - (double)Map[i]) / 2);
        }
        MaxHalfGap = gap;
    }

    /// <summary>
    /// bitsandbytes' create_dynamic_map(signed, max_exponent_bits: 7, total_bits: 8): for each of 7 decades 10^(i-6),
    /// the midpoints of an even split of [0.1, 1] into 2^i (signed) or 2^(i+1) (unsigned) parts, mirrored when signed,
    /// plus 0 and 1, padded with zeros to 256 and sorted.
    /// </summary>
    public static float[] DynamicMap(bool signed)
    {
        const int maxExponentBits = 7, totalBits = 8;
        int nonSignBits = totalBits - 1;
        var data = new List<double>();
        int additional = (1 << (nonSignBits - maxExponentBits)) - 1;
        for (int i = 0; i < maxExponentBits; i++)
        {
            int fractionItems = signed ? (1 << (i + nonSignBits - maxExponentBits)) + 1 : (1 << (i + nonSignBits - maxExponentBits + 1)) + 1;
            double scale = Math.Pow(10, -(maxExponentBits - 1) + i);
            AddMeans(data, fractionItems, scale, signed);
        }
        if (additional > 0) AddMeans(data, additional + 1, Math.Pow(10, -(maxExponentBits - 1) + maxExponentBits - 1), signed);
        data.Add(0);
        data.Add(1.0);
        while (data.Count < 256) data.Add(0);
        return data.OrderBy(x => x).Select(x => (float)x).ToArray();
    }

    private static void AddMeans(List<double> data, int items, double scale, bool signed)
    {
        // linspace(0.1, 1, items), then the means of neighbours.
        var boundaries = Enumerable.Range(0, items).Select(k => 0.1 + (1 - 0.1) * k / (items - 1)).ToArray();
        for (int k = 0; k + 1 < boundaries.Length; k++)
        {
            double mean = (boundaries[k] + boundaries[k + 1]) / 2;
            data.Add(scale * mean);
            if (signed) data.Add(-scale * mean);
        }
    }

    public static long Blocks(long numel) => (numel + BlockSize - 1) / BlockSize;

    /// <summary>Writes the codes of <paramref name="values"/> into <paramref name="codes"/> (uint8) and each block's absmax into <paramref name="absmax"/>.</summary>
    public void Quantize(Tensor values, Tensor codes, Tensor absmax)
    {
        using var scope = NewDisposeScope();
        long n = values.numel();
        long blocks = Blocks(n);
        var flat = values.reshape(-1).to(ScalarType.Float32);
        var padded = blocks * BlockSize == n ? flat : nn.functional.pad(flat, [0, blocks * BlockSize - n]);
        var byBlock = padded.view(blocks, BlockSize);
        var max = byBlock.abs().amax([1], keepdim: true);
        var safe = where(max > 0, max, ones_like(max));
        var normalized = (byBlock / safe).clamp(-1, 1).reshape(-1).narrow(0, 0, n);
        var mids = tensor(midpoints, device: values.device);
        // Index of the nearest map value = number of midpoints below the value.
        var index = bucketize(normalized.contiguous(), mids);
        codes.copy_(index.to(ScalarType.Byte).view(codes.shape));
        absmax.copy_(max.view(blocks));
    }

    /// <summary>The float32 values the codes stand for, in the shape of <paramref name="codes"/>.</summary>
    public Tensor Dequantize(Tensor codes, Tensor absmax)
    {
        // Only the result outlives the call: the int64 indices and the expanded scales are 12 B per value.
        using var scope = NewDisposeScope();
        long n = codes.numel();
        long blocks = Blocks(n);
        var map = tensor(Map, device: codes.device);
        var values = map.index_select(0, codes.reshape(-1).to(ScalarType.Int64));
        var scale = absmax.view(blocks, 1).expand(blocks, BlockSize).reshape(-1).narrow(0, 0, n);
        return (values * scale).view(codes.shape).MoveToOuterDisposeScope();
    }
}
