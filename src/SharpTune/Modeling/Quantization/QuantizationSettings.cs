namespace SharpTune.Modeling.Quantization;

/// <summary>4-bit data types of bitsandbytes (bnb_4bit_quant_type).</summary>
public enum FourBitType { Nf4, Fp4 }

/// <summary>How the frozen base weights are stored: 4-bit blockwise (QLoRA) or 8-bit row-wise.</summary>
public enum QuantizationKind { FourBit, EightBit }

/// <summary>
/// What to quantize and how, in the terms of transformers' BitsAndBytesConfig: load_in_4bit / load_in_8bit,
/// bnb_4bit_quant_type, bnb_4bit_use_double_quant, bnb_4bit_compute_dtype, and the skipped modules (lm_head).
/// </summary>
public sealed record QuantizationSettings
{
    public QuantizationKind Kind { get; init; } = QuantizationKind.FourBit;
    public FourBitType QuantType { get; init; } = FourBitType.Nf4;
    /// <summary>Quantize the per-block absmax again (8-bit, blocks of 256, after subtracting the mean).</summary>
    public bool DoubleQuant { get; init; }
    /// <summary>Elements per absmax block of the 4-bit weights (bitsandbytes: 64).</summary>
    public int BlockSize { get; init; } = 64;
    /// <summary>dtype the weights are dequantized to for the matmul; null: the model's dtype.</summary>
    public TorchSharp.torch.ScalarType? ComputeDType { get; init; }
    /// <summary>Linear layers kept in full precision, matched as module-name suffixes (lm_head, as transformers does).</summary>
    public IReadOnlyList<string> SkipModules { get; init; } = ["lm_head"];

    public static QuantizationSettings Nf4(bool doubleQuant = true) => new() { QuantType = FourBitType.Nf4, DoubleQuant = doubleQuant };
    public static QuantizationSettings Fp4(bool doubleQuant = false) => new() { QuantType = FourBitType.Fp4, DoubleQuant = doubleQuant };
    public static QuantizationSettings Int8() => new() { Kind = QuantizationKind.EightBit };

    /// <summary>
    /// The settings a training config asks for (load_in_4bit + bnb_4bit_* keys, or load_in_8bit); null when it loads
    /// the base in full precision.
    /// </summary>
    public static QuantizationSettings? FromConfig(SharpTune.Config.TrainConfig config)
    {
        if (config.LoadIn8bit) return Int8();
        if (!config.LoadIn4bit) return null;
        return new QuantizationSettings
        {
            QuantType = config.Bnb4bitQuantType == SharpTune.Config.QuantType4Bit.Fp4 ? FourBitType.Fp4 : FourBitType.Nf4,
            DoubleQuant = config.Bnb4bitUseDoubleQuant,
            ComputeDType = config.Bnb4bitComputeDtype switch
            {
                SharpTune.Config.ComputeDtype.Float32 => TorchSharp.torch.ScalarType.Float32,
                SharpTune.Config.ComputeDtype.Bfloat16 => TorchSharp.torch.ScalarType.BFloat16,
                SharpTune.Config.ComputeDtype.Float16 => TorchSharp.torch.ScalarType.Float16,
                _ => null,
            },
        };
    }

    public bool Skips(string moduleName) =>
        SkipModules.Any(s => moduleName == s || moduleName.EndsWith("." + s, StringComparison.Ordinal));

    /// <summary>Fails with one line if a value is outside what the quantizer supports.</summary>
    public void Validate()
    {
        if (BlockSize < 2 || BlockSize > 4096 || (BlockSize & (BlockSize - 1)) != 0)
            throw new InvalidInputException($"bnb_4bit blocksize: {BlockSize} is not allowed; allowed: a power of two from 2 to 4096 (bitsandbytes uses 64)");
        if (ComputeDType is { } d && d is not (TorchSharp.torch.ScalarType.Float32 or TorchSharp.torch.ScalarType.BFloat16 or TorchSharp.torch.ScalarType.Float16))
            throw new InvalidInputException($"bnb_4bit_compute_dtype: {d} is not allowed; allowed: float32, bfloat16, float16");
    }
}
