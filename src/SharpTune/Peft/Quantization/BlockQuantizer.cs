using static TorchSharp.torch;

namespace SharpTune.Peft.Quantization;

/// <summary>
/// Blockwise absmax quantization with bitsandbytes' semantics (its torch-native "default" backend):
/// per block of <c>blockSize</c> consecutive elements of the flattened tensor, absmax = max |x|, the scaled values
/// clamp(x · (1/absmax), -1, 1) are mapped to the nearest code-book value (ties to the lower code index, as argmin),
/// and code[i] · absmax is the dequantized value. Large tensors are processed in chunks of whole blocks, so the
/// temporaries stay a few MiB whatever the layer size.
/// </summary>
public static class BlockQuantizer
{
    private const long ChunkElements = 1 << 20;

    /// <summary>
    /// 4-bit codes of <paramref name="weight"/> packed two per byte (first value of a pair in the high nibble, an odd
    /// tail padded with code 0) and the float32 absmax per block.
    /// </summary>
    public static (Tensor Packed, Tensor Absmax) Quantize4Bit(Tensor weight, FourBitType type, int blockSize)
    {
        if (blockSize % 2 != 0) throw new ArgumentException("block size must be even", nameof(blockSize));
        using var book = new NearestCode(CodeBooks.For(type));
        var (codes, absmax) = QuantizeBlockwise(weight, book, blockSize, packNibbles: true);
        return (codes, absmax);
    }

    /// <summary>Inverse of <see cref="Quantize4Bit"/>: code[nibble] · absmax, in <paramref name="dtype"/>, reshaped to <paramref name="shape"/>.</summary>
    public static Tensor Dequantize4Bit(Tensor packed, Tensor absmax, FourBitType type, int blockSize, long[] shape, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var code = CodeBooks.For(type);
        // A 256 × 2 table: byte b decodes to (code[b >> 4], code[b & 15]) with one index_select.
        var table = new float[512];
        for (var b = 0; b < 256; b++)
        {
            table[2 * b] = code[b >> 4];
            table[2 * b + 1] = code[b & 15];
        }
        var lut = tensor(table, [256, 2]);
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var values = lut.index_select(0, packed.reshape(-1).to(ScalarType.Int32)).reshape(-1).narrow(0, 0, n);
        return ScaleBlocks(values, absmax, blockSize, dtype).reshape(shape).MoveToOuterDisposeScope();
    }

    /// <summary>bitsandbytes quantize_blockwise: 8-bit codes (uint8, one per element) into <paramref name="code"/> and absmax per block.</summary>
    public static (Tensor Codes, Tensor Absmax) Quantize8Bit(Tensor values, IReadOnlyList<float> code, int blockSize)
    {
        using var book = new NearestCode(code);
        return QuantizeBlockwise(values, book, blockSize, packNibbles: false);
    }

    /// <summary>bitsandbytes dequantize_blockwise: code[q] · absmax of q's block, float32, flat.</summary>
    public static Tensor Dequantize8Bit(Tensor codes, Tensor absmax, IReadOnlyList<float> code, int blockSize)
    {
        using var scope = NewDisposeScope();
        var book = tensor(code.ToArray());
        var values = book.index_select(0, codes.reshape(-1).to(ScalarType.Int32));
        return ScaleBlocks(values, absmax, blockSize, ScalarType.Float32).MoveToOuterDisposeScope();
    }

    private static Tensor ScaleBlocks(Tensor values, Tensor absmax, int blockSize, ScalarType dtype)
    {
        long n = values.numel();
        long full = n / blockSize, rem = n % blockSize;
        var head = values.narrow(0, 0, full * blockSize).view(full, blockSize) * absmax.narrow(0, 0, full).view(-1, 1);
        var scaled = rem == 0 ? head.reshape(-1) : cat([head.reshape(-1), values.narrow(0, full * blockSize, rem) * absmax[full]]);
        return scaled.to(dtype);
    }

    private static (Tensor Codes, Tensor Absmax) QuantizeBlockwise(Tensor input, NearestCode book, int blockSize, bool packNibbles)
    {
        using var noGrad = no_grad();
        using var flat = input.detach().reshape(-1);
        long n = flat.numel();
        long blocks = (n + blockSize - 1) / blockSize;
        var absmax = zeros(blocks, ScalarType.Float32);
        var codes = zeros(packNibbles ? (n + 1) / 2 : n, ScalarType.Byte);
        long chunk = Math.Max(1, ChunkElements / blockSize) * blockSize;
        for (long first = 0; first < n; first += chunk)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(chunk, n - first);
            var x = flat.narrow(0, first, count).to(ScalarType.Float32);
            long full = count / blockSize, rem = count % blockSize;
            Tensor scaled;
            var headBlocks = x.narrow(0, 0, full * blockSize).view(full, blockSize);
            var headMax = headBlocks.abs().amax([1]);
            absmax.narrow(0, first / blockSize, full).copy_(headMax);
            scaled = (headBlocks * headMax.reciprocal().view(-1, 1)).clamp(-1, 1).reshape(-1);
            if (rem > 0)
            {
                var tail = x.narrow(0, full * blockSize, rem);
                var tailMax = tail.abs().amax([0]);
                absmax[first / blockSize + full] = tailMax;
                scaled = cat([scaled, (tail * tailMax.reciprocal()).clamp(-1, 1)]);
            }
            var index = book.Nearest(scaled);
            if (packNibbles)
            {
                if (count % 2 == 1) index = cat([index, zeros(1, ScalarType.Int64)]);
                var pairs = index.view(-1, 2);
                var packed = (pairs.select(1, 0) * 16 + pairs.select(1, 1)).to(ScalarType.Byte);
                codes.narrow(0, first / 2, packed.numel()).copy_(packed);
            }
            else
            {
                codes.narrow(0, first, count).copy_(index.to(ScalarType.Byte));
            }
        }
        return (codes, absmax);
    }

    /// <summary>
    /// argmin_i |x - code[i]| with the first index winning ties, computed as torch.argmin would but without the
    /// n × |code| difference matrix: a binary search in the sorted distinct values, then the nearer neighbour.
    /// A NaN (an all-zero block scaled by 1/0) maps to code 0, as argmin over NaN differences does.
    /// </summary>
    private sealed class NearestCode : IDisposable
    {
        private readonly Tensor sortedValues, sortedToCode;
        private readonly long count;

        public NearestCode(IReadOnlyList<float> code)
        {
            // Equal values (FP4's 0 and -0) keep the lowest code index, the one argmin returns.
            var distinct = code.Select((v, i) => (Value: v, Index: (long)i))
                .GroupBy(e => e.Value)
                .Select(g => g.OrderBy(e => e.Index).First())
                .OrderBy(e => e.Value)
                .ToArray();
            count = distinct.Length;
            sortedValues = tensor(distinct.Select(e => e.Value).ToArray());
            sortedToCode = tensor(distinct.Select(e => e.Index).ToArray());
        }

        public Tensor Nearest(Tensor x)
        {
            using var scope = NewDisposeScope();
            var position = searchsorted(sortedValues, x);
            var upper = position.clamp_max(count - 1);
            var lower = (position - 1).clamp_min(0);
            var upperDistance = (x - sortedValues.index_select(0, upper)).abs();
            var lowerDistance = (x - sortedValues.index_select(0, lower)).abs();
            var upperCode = sortedToCode.index_select(0, upper);
            var lowerCode = sortedToCode.index_select(0, lower);
            var takeUpper = upperDistance.lt(lowerDistance).logical_or(upperDistance.eq(lowerDistance).logical_and(upperCode.lt(lowerCode)));
            var index = where(takeUpper, upperCode, lowerCode);
            index = where(x.isnan(), zeros_like(index), index);
            return index.MoveToOuterDisposeScope();
        }

        public void Dispose()
        {
            sortedValues.Dispose();
            sortedToCode.Dispose();
        }
    }
}
