using SharpTune.Modeling.Quantization;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace SharpTune.Tests.Modeling.Quantization;

/// <summary>4-bit and 8-bit codes against values worked out by hand from the bitsandbytes code books.</summary>
public sealed class BlockQuantizerTests(ITestOutputHelper output)
{
    private static readonly float[] Nf4 = CodeBooks.Nf4.ToArray();

    [Fact]
    public void Nf4CodeBookIsTheQloraTableAndFp4IsBitsandbytesOrder()
    {
        Assert.Equal(16, Nf4.Length);
        Assert.Equal(-0.6961928009986877f, Nf4[1]);
        Assert.Equal(0.07958029955625534f, Nf4[8]);
        Assert.Equal(0.7229568362236023f, Nf4[14]);
        Assert.Equal([0f, 0.0625f / 12, 8f / 12, 1f, 4f / 12, 0.5f, 2f / 12, 0.25f], CodeBooks.Fp4.Take(8).ToArray());
        Assert.Equal(-1f, CodeBooks.Fp4[11]);
    }

    [Fact]
    public void Nf4PacksHandComputedCodesHighNibbleFirst()
    {
        // Block 1 (absmax 1): 1→15, -0.5→2 (-0.5251 is 0.025 away, -0.3949 0.105), 0.25→10, 0→7, 0.1→8, -0.1→6, 0.6→13, -1→0.
        // Block 2 (absmax 2, scaled by 1/2): 0.1→8, 1→15, -0.6→2, 0.45→12, 0→7, 0→7, 0→7, -0.15→5.
        // Tail block (one value, absmax 0.5): scaled 1→15, padded with code 0 in the low nibble.
        float[] x = [1.0f, -0.5f, 0.25f, 0f, 0.1f, -0.1f, 0.6f, -1.0f, 0.2f, 2.0f, -1.2f, 0.9f, 0f, 0f, 0f, -0.3f, 0.5f];
        using var w = tensor(x);
        var (packed, absmax) = BlockQuantizer.Quantize4Bit(w, FourBitType.Nf4, 8);
        Assert.Equal(new byte[] { 0xF2, 0xA7, 0x86, 0xD0, 0x8F, 0x2C, 0x77, 0x75, 0xF0 }, packed.data<byte>().ToArray());
        Assert.Equal([1f, 2f, 0.5f], absmax.data<float>().ToArray());

        using var restored = BlockQuantizer.Dequantize4Bit(packed, absmax, FourBitType.Nf4, 8, [17], ScalarType.Float32);
        int[] codes = [15, 2, 10, 7, 8, 6, 13, 0, 8, 15, 2, 12, 7, 7, 7, 5, 15];
        float[] scales = [1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 0.5f];
        Assert.Equal(codes.Select((c, i) => Nf4[c] * scales[i]).ToArray(), restored.data<float>().ToArray());
        Assert.Equal(-0.5250730514526367f, restored[1].item<float>());
        Assert.Equal(0.44070982933044434f * 2, restored[11].item<float>());
    }

    [Fact]
    public void Fp4PacksHandComputedCodes()
    {
        // FP4 book: 0:0 1:1/192 2:2/3 3:1 4:1/3 5:1/2 6:1/6 7:1/4, 8..15 the same negated.
        // 1→3, -0.5→13, 0.25→7, 0→0 (0 and -0 tie: the lower index), 0.1→6 (1/6 is 0.067 away, 1/192 0.095), -0.1→14, 0.6→2, -1→11.
        using var w = tensor(new[] { 1.0f, -0.5f, 0.25f, 0f, 0.1f, -0.1f, 0.6f, -1.0f });
        var (packed, absmax) = BlockQuantizer.Quantize4Bit(w, FourBitType.Fp4, 8);
        Assert.Equal(new byte[] { 0x3D, 0x70, 0x6E, 0x2B }, packed.data<byte>().ToArray());
        using var restored = BlockQuantizer.Dequantize4Bit(packed, absmax, FourBitType.Fp4, 8, [8], ScalarType.Float32);
        Assert.Equal([1f, -0.5f, 0.25f, 0f, 2f / 12, -2f / 12, 8f / 12, -1f], restored.data<float>().ToArray());
    }

    [Fact]
    public void BlockSize64UsesTheFlattenedOrderAcrossRows()
    {
        // A (2 × 64) weight is one block per row; row 1 is row 0 times 4, so it gets the same codes and absmax × 4.
        using var row = linspace(-1.0, 1.0, 64);
        using var w = stack([row, row * 4]);
        var (packed, absmax) = BlockQuantizer.Quantize4Bit(w, FourBitType.Nf4, 64);
        Assert.Equal(64, packed.numel());
        Assert.Equal([1f, 4f], absmax.data<float>().ToArray());
        Assert.Equal(packed.narrow(0, 0, 32).data<byte>().ToArray(), packed.narrow(0, 32, 32).data<byte>().ToArray());
        Assert.Equal(0x0F & 0, packed[0].item<byte>() >> 4);         // -1 → code 0
        Assert.Equal(15, packed[31].item<byte>() & 0x0F);             // +1 → code 15
    }

    [Fact]
    public void DynamicMapMatchesBitsandbytesCreateDynamicMap()
    {
        var map = CodeBooks.DynamicSigned;
        Assert.Equal(256, map.Count);
        Assert.Equal(0f, map[127]);
        Assert.Equal(1f, map[255]);
        Assert.Equal(-0.99296875f, map[0], 6);
        Assert.Equal(0.99296875f, map[254], 6);
        Assert.Equal(0.33203125f, map[207], 6);                      // 0.1 + 0.9/64 · 16.5
        Assert.Equal(5.5e-7f, map[128], 12);                          // 10^-6 · (0.1 + 1) / 2
        Assert.True(map.Zip(map.Skip(1)).All(p => p.First < p.Second));
    }

    [Fact]
    public void DoubleQuantOfAbsmaxHandComputed()
    {
        // absmax [1,2,3,4]: offset 2.5, centered [-1.5,-0.5,0.5,1.5], nested absmax 1.5, scaled [-1,-1/3,1/3,1]:
        // -1 → code 0 (-0.99296875, the map has no -1), ±1/3 → ±0.33203125 (codes 47 / 207), 1 → 255.
        using var absmax = tensor(new[] { 1f, 2f, 3f, 4f });
        using var offset = absmax.mean();
        using var centered = absmax - offset;
        var (codes, nested) = BlockQuantizer.Quantize8Bit(centered, CodeBooks.DynamicSigned, 256);
        Assert.Equal(new byte[] { 0, 47, 207, 255 }, codes.data<byte>().ToArray());
        Assert.Equal(1.5f, nested.item<float>());
        using var restored = BlockQuantizer.Dequantize8Bit(codes, nested, CodeBooks.DynamicSigned, 256) + offset;
        var r = restored.data<float>().ToArray();
        Assert.Equal(2.5 - 0.99296875 * 1.5, r[0], 5);
        Assert.Equal(2.5 - 0.33203125 * 1.5, r[1], 5);
        Assert.Equal(2.5 + 0.33203125 * 1.5, r[2], 5);
        Assert.Equal(4.0, r[3], 6);
    }

    [Fact]
    public void DoubleQuantRoundTripOfRealAbsmaxIsWithinTheDynamicMapStep()
    {
        manual_seed(7);
        using var w = randn(512, 1024);
        var (_, absmax) = BlockQuantizer.Quantize4Bit(w, FourBitType.Nf4, 64);
        using var q = FourBitLinearWeight.Quantize(w, FourBitType.Nf4, 64, doubleQuant: true, ScalarType.Float32);
        using var restored = q.BlockAbsmax();
        using var error = (restored - absmax).abs();
        using var centered = (absmax - absmax.mean()).abs().view(-1, 256).amax([1]);
        double maxRelative = (error.view(-1, 256) / centered.view(-1, 1)).max().item<float>();
        double meanAbs = error.mean().item<float>();
        output.WriteLine($"double quant: {absmax.numel()} absmax (mean {absmax.mean().item<float>():F4}), mean abs error {meanAbs:E3}, max error / block max |absmax-offset| {maxRelative:E3}");
        // The top decade of the dynamic map has steps of 0.9/64 = 0.0141, so the error is at most half a step of the nested block's range.
        Assert.True(maxRelative <= 0.9 / 64 / 2 + 1e-6, $"max relative {maxRelative}");
        Assert.True(meanAbs < 0.004 * absmax.mean().item<float>(), $"mean abs {meanAbs}");
        Assert.Equal(512 * 1024 / 64, q.Absmax.numel());
        Assert.Equal(ScalarType.Byte, q.Absmax.dtype);
        Assert.Equal(32, q.NestedAbsmax!.numel());
    }

    [Fact]
    public void QuantizationErrorOnStandardNormalWeights()
    {
        manual_seed(1234);
        using var w = randn(1024, 4096);
        var rows = new List<string>();
        double Error(QuantizedLinearWeight q)
        {
            using var restored = q.Dequantize(ScalarType.Float32);
            using var diff = (restored - w).abs();
            double mae = diff.mean().item<float>();
            double rmse = Math.Sqrt(diff.pow(2).mean().item<float>());
            rows.Add($"{q.GetType().Name,-22} {(q is FourBitLinearWeight f ? $"{f.QuantType} dq={f.DoubleQuant}" : "row-wise"),-16} MAE {mae:F5}  RMSE {rmse:F5}  bytes/elem {(double)q.ResidentBytes / w.numel():F4}");
            q.Dispose();
            return mae;
        }
        double nf4 = Error(FourBitLinearWeight.Quantize(w, FourBitType.Nf4, 64, false, ScalarType.Float32));
        double nf4Dq = Error(FourBitLinearWeight.Quantize(w, FourBitType.Nf4, 64, true, ScalarType.Float32));
        double fp4 = Error(FourBitLinearWeight.Quantize(w, FourBitType.Fp4, 64, false, ScalarType.Float32));
        double int8 = Error(Int8LinearWeight.Quantize(w, ScalarType.Float32));
        foreach (var r in rows) output.WriteLine(r);
        // NF4, block 64, N(0,1): absmax ≈ 2.6σ, code gaps 0.08–0.28 of absmax → mean |error| ≈ 0.073σ (measured 0.0728 on 4M values).
        Assert.InRange(nf4, 0.071, 0.075);
        // Double quant adds a ≤0.7% absmax error: barely changes the figure.
        Assert.InRange(nf4Dq, nf4, nf4 * 1.01);
        // FP4's code book fits a normal worse (a gap from 1/3 to 2/3 of absmax): clearly above NF4.
        Assert.InRange(fp4, nf4 * 1.1, 0.11);
        // int8 row-wise: uniform rounding, MAE = step/4 = absmax/508 with row absmax ≈ 3.8σ over 4096 values → 0.0075σ (measured 0.00749).
        Assert.InRange(int8, 0.0072, 0.0078);
    }

    [Fact]
    public void Int8RowwiseHandComputed()
    {
        // Row absmax 1: q = round(127 x) with half to even: 127, -63.5→-64, 31.75→32, 0.381→0. An all-zero row stays zero.
        using var w = tensor(new[] { 1.0f, -0.5f, 0.25f, 0.003f, 0f, 0f, 0f, 0f }, [2, 4]);
        using var q = Int8LinearWeight.Quantize(w, ScalarType.Float32);
        Assert.Equal(new sbyte[] { 127, -64, 32, 0, 0, 0, 0, 0 }, q.Codes.data<sbyte>().ToArray());
        Assert.Equal([1f, 0f], q.RowAbsmax.data<float>().ToArray());
        using var restored = q.Dequantize(ScalarType.Float32);
        var r = restored.data<float>().ToArray();
        Assert.Equal(1.0, r[0], 6);
        Assert.Equal(-64.0 / 127, r[1], 6);
        Assert.Equal(32.0 / 127, r[2], 6);
        Assert.Equal(0f, r[4]);
    }
}

public sealed class QuantizationSettingsTests
{
    [Fact]
    public void ConfigKeysMapToSettings()
    {
        var fourBit = QuantizationSettings.FromConfig(new SharpTune.Config.TrainConfig
        {
            LoadIn4bit = true,
            Bnb4bitQuantType = SharpTune.Config.QuantType4Bit.Fp4,
            Bnb4bitUseDoubleQuant = false,
            Bnb4bitComputeDtype = SharpTune.Config.ComputeDtype.Bfloat16,
        })!;
        Assert.Equal((QuantizationKind.FourBit, FourBitType.Fp4, false, ScalarType.BFloat16, 64), (fourBit.Kind, fourBit.QuantType, fourBit.DoubleQuant, fourBit.ComputeDType, fourBit.BlockSize));
        Assert.Equal(["lm_head"], fourBit.SkipModules);
        Assert.Equal(QuantizationKind.EightBit, QuantizationSettings.FromConfig(new SharpTune.Config.TrainConfig { LoadIn8bit = true })!.Kind);
        Assert.Null(QuantizationSettings.FromConfig(new SharpTune.Config.TrainConfig()));
        Assert.True(QuantizationSettings.Nf4().Skips("lm_head"));
        Assert.False(QuantizationSettings.Nf4().Skips("model.layers.0.mlp.down_proj"));
        var bad = Assert.Throws<InvalidInputException>(() => (QuantizationSettings.Nf4() with { BlockSize = 48 }).Validate());
        Assert.Equal("bnb_4bit blocksize: 48 is not allowed; allowed: a power of two from 2 to 4096 (bitsandbytes uses 64)", bad.Message);
    }
}
