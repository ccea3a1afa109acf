using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Modeling.Quantization;

/// <summary>
/// A frozen linear weight (out × in) held quantized. The forward product dequantizes it for the matmul and drops it;
/// the backward dequantizes it again for the input gradient (<see cref="DequantizedLinear"/>), so no dense copy
/// outlives one matmul. The weight itself never receives a gradient.
/// </summary>
public abstract class QuantizedLinearWeight : IFrozenWeight
{
    private bool disposed;

    protected QuantizedLinearWeight(long[] shape, ScalarType computeDType)
    {
        Shape = shape;
        ComputeDType = computeDType;
    }

    /// <summary>(out, in) of the original weight.</summary>
    public long[] Shape { get; }
    public ScalarType ComputeDType { get; }

    /// <summary>The stored tensors (codes, scales, nested state), by the names bitsandbytes gives them.</summary>
    public abstract IReadOnlyDictionary<string, Tensor> StoredTensors { get; }

    /// <summary>Bytes of all stored tensors: what the quantized weight keeps resident.</summary>
    public long ResidentBytes => StoredTensors.Values.Sum(t => t.numel() * t.element_size());

    /// <summary>The weight dequantized to a new dense (out × in) tensor.</summary>
    public abstract Tensor Dequantize(ScalarType dtype);

    public Tensor Dense(ScalarType dtype) => Dequantize(dtype);

    /// <summary>x Wᵀ computed in the compute dtype, returned in x's dtype; gradient to x only.</summary>
    public Tensor Linear(Tensor input)
    {
        using var scope = NewDisposeScope();
        var x = input.to(ComputeDType);
        var y = DequantizedLinear.Apply(this, x);
        return y.to(input.dtype).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var t in StoredTensors.Values) t.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>y = x Wᵀ with W recomputed from the quantized state in backward instead of being saved.</summary>
    private sealed class DequantizedLinear : autograd.SingleTensorFunction<DequantizedLinear>
    {
        public override string Name => nameof(DequantizedLinear);

        public static Tensor Apply(QuantizedLinearWeight weight, Tensor input) => apply(weight, input);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var weight = (QuantizedLinearWeight)vars[0];
            var input = (Tensor)vars[1];
            ctx.save_data("weight", weight);
            using var noGrad = no_grad();
            using var dense = weight.Dequantize(input.dtype);
            return nn.functional.linear(input, dense);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var weight = (QuantizedLinearWeight)ctx.get_data("weight");
            using var noGrad = no_grad();
            using var dense = weight.Dequantize(gradOutput.dtype);
            return [null!, gradOutput.matmul(dense)];
        }
    }
}

/// <summary>
/// NF4 / FP4 weight as bitsandbytes stores it: packed 4-bit codes (uint8, two per byte, first value in the high nibble),
/// absmax per block of <see cref="BlockSize"/>; with double quantization the absmax values minus their mean
/// (<see cref="Offset"/>) are themselves stored as 8-bit dynamic-map codes with a float32 absmax per 256 of them.
/// </summary>
public sealed class FourBitLinearWeight : QuantizedLinearWeight
{
    /// <summary>Block size of the nested (double) quantization of absmax, as bitsandbytes.</summary>
    public const int NestedBlockSize = 256;

    private readonly Dictionary<string, Tensor> stored;

    private FourBitLinearWeight(long[] shape, ScalarType computeDType, FourBitType type, int blockSize, Dictionary<string, Tensor> stored, float offset)
        : base(shape, computeDType)
    {
        QuantType = type;
        BlockSize = blockSize;
        this.stored = stored;
        Offset = offset;
    }

    public FourBitType QuantType { get; }
    public int BlockSize { get; }
    public bool DoubleQuant => stored.ContainsKey("nested_absmax");
    /// <summary>Mean of absmax subtracted before the nested quantization (0 without double quantization).</summary>
    public float Offset { get; }
    public Tensor Packed => stored["weight"];
    /// <summary>float32 absmax per block without double quantization; the 8-bit codes of (absmax - offset) with it.</summary>
    public Tensor Absmax => stored["absmax"];
    public Tensor? NestedAbsmax => stored.GetValueOrDefault("nested_absmax");

    public override IReadOnlyDictionary<string, Tensor> StoredTensors => stored;

    public static FourBitLinearWeight Quantize(Tensor weight, FourBitType type, int blockSize, bool doubleQuant, ScalarType computeDType)
    {
        using var scope = NewDisposeScope();
        var (packed, absmax) = BlockQuantizer.Quantize4Bit(weight, type, blockSize);
        var stored = new Dictionary<string, Tensor> { ["weight"] = packed.MoveToOuterDisposeScope() };
        float offset = 0;
        if (doubleQuant)
        {
            // bitsandbytes: offset = absmax.mean(); absmax -= offset; quantize_blockwise(absmax, blocksize=256) with the dynamic map.
            var mean = absmax.mean();
            offset = mean.item<float>();
            var centered = absmax - mean;
            var (codes, nestedAbsmax) = BlockQuantizer.Quantize8Bit(centered, CodeBooks.DynamicSigned, NestedBlockSize);
            stored["absmax"] = codes.MoveToOuterDisposeScope();
            stored["nested_absmax"] = nestedAbsmax.MoveToOuterDisposeScope();
        }
        else
        {
            stored["absmax"] = absmax.MoveToOuterDisposeScope();
        }
        return new FourBitLinearWeight(weight.shape, computeDType, type, blockSize, stored, offset);
    }

    /// <summary>The float32 absmax per block, undoing the nested quantization when there is one.</summary>
    public Tensor BlockAbsmax()
    {
        if (NestedAbsmax is not { } nested) return Absmax.clone();
        using var scope = NewDisposeScope();
        var restored = BlockQuantizer.Dequantize8Bit(Absmax, nested, CodeBooks.DynamicSigned, NestedBlockSize) + Offset;
        return restored.MoveToOuterDisposeScope();
    }

    public override Tensor Dequantize(ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var absmax = BlockAbsmax();
        return BlockQuantizer.Dequantize4Bit(Packed, absmax, QuantType, BlockSize, Shape, dtype).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Row-wise absmax int8 weight, as bitsandbytes' int8_vectorwise_quant without outlier columns (threshold 0):
/// q = round(W · (127 / rowAbsmax)), W ≈ q · rowAbsmax / 127. An all-zero row stores zeros.
/// </summary>
public sealed class Int8LinearWeight : QuantizedLinearWeight
{
    private readonly Dictionary<string, Tensor> stored;

    private Int8LinearWeight(long[] shape, ScalarType computeDType, Dictionary<string, Tensor> stored) : base(shape, computeDType) =>
        this.stored = stored;

    public Tensor Codes => stored["weight"];
    /// <summary>float32 absmax of each output row (bitsandbytes' SCB).</summary>
    public Tensor RowAbsmax => stored["SCB"];
    public override IReadOnlyDictionary<string, Tensor> StoredTensors => stored;

    public static Int8LinearWeight Quantize(Tensor weight, ScalarType computeDType)
    {
        var (codes, rowAbsmax) = BlockQuantizer.QuantizeRows8Bit(weight);
        return new Int8LinearWeight(weight.shape, computeDType, new Dictionary<string, Tensor> { ["weight"] = codes, ["SCB"] = rowAbsmax });
    }

    public override Tensor Dequantize(ScalarType dtype) => BlockQuantizer.DequantizeRows8Bit(Codes, RowAbsmax, dtype);
}
