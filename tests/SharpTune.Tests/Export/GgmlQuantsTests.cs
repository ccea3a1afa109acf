using System.Buffers.Binary;
using SharpTune.Export;

namespace SharpTune.Tests.Export;

public sealed class GgmlQuantsTests
{
    [Fact]
    public void Q8_0BlockIsFp16ScaleThen32SignedBytes()
    {
        var x = Enumerable.Range(0, 32).Select(j => (j - 16) * 0.25f).ToArray();   // amax 4
        var block = new byte[34];
        GgmlQuants.QuantizeRow(GgmlType.Q8_0, x, block);
        Assert.Equal((Half)(4f / 127), BinaryPrimitives.ReadHalfLittleEndian(block));
        for (int j = 0; j < 32; j++)
            Assert.Equal((sbyte)MathF.Round(x[j] * (127f / 4f), MidpointRounding.AwayFromZero), (sbyte)block[2 + j]);
    }

    [Fact]
    public void Q4_0PutsElementJInTheLowNibbleAndJPlus16InTheHighNibbleOfByteJ()
    {
        // Largest magnitude -8 at j = 0 gives d = max / -8 = 1, so each stored nibble is x + 8.
        var x = Enumerable.Range(0, 16).Select(j => j - 8f).Concat(Enumerable.Range(0, 16).Select(j => 7f - j)).ToArray();
        var block = new byte[18];
        GgmlQuants.QuantizeRow(GgmlType.Q4_0, x, block);
        Assert.Equal(1f, (float)BinaryPrimitives.ReadHalfLittleEndian(block));
        for (int j = 0; j < 16; j++) Assert.Equal((byte)(j | ((15 - j) << 4)), block[2 + j]);
        Assert.Equal(x, GgmlQuants.DequantizeRow(GgmlType.Q4_0, block, 32));
    }

    [Theory]
    [InlineData(GgmlType.Q4_0, 0.12)]
    [InlineData(GgmlType.Q5_0, 0.06)]
    [InlineData(GgmlType.Q5_1, 0.06)]
    [InlineData(GgmlType.Q8_0, 0.006)]
    [InlineData(GgmlType.Q4_K, 0.09)]
    [InlineData(GgmlType.Q5_K, 0.045)]
    [InlineData(GgmlType.Q6_K, 0.022)]
    [InlineData(GgmlType.F16, 0.001)]
    [InlineData(GgmlType.BF16, 0.005)]
    public void RoundTripErrorIsWhatTheBitWidthAllows(GgmlType type, double maxRelativeRmse)
    {
        var random = new Random(5);
        var x = Enumerable.Range(0, 1024).Select(_ => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()))).ToArray();
        var bytes = new byte[GgmlTypes.RowBytes(type, x.Length)];
        GgmlQuants.QuantizeRow(type, x, bytes);
        var y = GgmlQuants.DequantizeRow(type, bytes, x.Length);
        double rmse = Math.Sqrt(x.Zip(y, (a, b) => (double)(a - b) * (a - b)).Average());
        double rms = Math.Sqrt(x.Average(v => (double)v * v));
        Assert.InRange(rmse / rms, 1e-9, maxRelativeRmse);
    }

    [Fact]
    public void KQuantBlockSizesAreGgmls()
    {
        Assert.Equal(144, GgmlTypes.BlockBytes(GgmlType.Q4_K));
        Assert.Equal(176, GgmlTypes.BlockBytes(GgmlType.Q5_K));
        Assert.Equal(210, GgmlTypes.BlockBytes(GgmlType.Q6_K));
        Assert.Equal(34 * 4, GgmlTypes.RowBytes(GgmlType.Q8_0, 128));
    }

    [Fact]
    public void AllZeroSuperBlocksQuantizeToZeros()
    {
        var zeros = new float[256];
        foreach (var type in new[] { GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K })
        {
            var bytes = new byte[GgmlTypes.BlockBytes(type)];
            GgmlQuants.QuantizeRow(type, zeros, bytes);
            Assert.All(GgmlQuants.DequantizeRow(type, bytes, 256), v => Assert.Equal(0f, v));
        }
    }

    [Fact]
    public void Q4KMMixFollowsLlamaQuantize()
    {
        const int layers = 32;
        GgmlType T(string name, long[] shape, int layer = -1, bool hasOutput = true) =>
            GgufQuantMix.TypeFor(GgufOutType.Q4_K_M, name, shape, layer, layers, hasOutput);
        long[] square = [4096, 4096];
        var moreBits = Enumerable.Range(0, layers).Where(i => T($"blk.{i}.attn_v.weight", square, i) == GgmlType.Q6_K).ToArray();
        Assert.Equal([0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31], moreBits);
        Assert.Equal(moreBits, Enumerable.Range(0, layers).Where(i => T($"blk.{i}.ffn_down.weight", [4096, 14336], i) == GgmlType.Q6_K));
        Assert.Equal(GgmlType.Q4_K, T("blk.4.attn_q.weight", square, 4));
        Assert.Equal(GgmlType.Q6_K, T("output.weight", [128256, 4096]));
        Assert.Equal(GgmlType.Q4_K, T("token_embd.weight", [128256, 4096]));
        Assert.Equal(GgmlType.Q6_K, T("token_embd.weight", [128256, 4096], hasOutput: false));
        Assert.Equal(GgmlType.Q5_K, T("blk.4.attn_qkv.weight", [9216, 3072], 4));
        Assert.Equal(GgmlType.F32, T("blk.4.attn_norm.weight", [4096], 4));
        // Rows that do not divide into 256: q4_K → q5_0, q6_K → q8_0; q8_0's f16 fallback for rows not a multiple of 32.
        Assert.Equal(GgmlType.Q5_0, T("blk.4.ffn_up.weight", [384, 128], 4));
        Assert.Equal(GgmlType.Q8_0, T("blk.0.ffn_down.weight", [128, 384], 0));
        Assert.Equal(GgmlType.F16, GgufQuantMix.TypeFor(GgufOutType.Q8_0, "blk.0.ffn_down.weight", [64, 172], 0, 5, true));
        Assert.Equal(GgmlType.Q6_K, GgufQuantMix.TypeFor(GgufOutType.Q4_0, "output.weight", [32000, 4096], -1, 32, true));
        Assert.Equal(GgmlType.Q8_0, GgufQuantMix.TypeFor(GgufOutType.Q8_0, "output.weight", [32000, 4096], -1, 32, true));
    }
}
