using static TorchSharp.torch;

namespace SharpTune.Modeling.Quantization;

/// <summary>
/// Blockwise absmax quantization with bitsandbytes' semantics (its torch-native "default" backend):
/// per block of <c>blockSize</c> consecutive elements of the flattened tensor, absmax = max |x|, the scaled values
/// clamp(x · (1/absmax), -1, 1) are mapped to the nearest code-book value (ties to the lower code index, as
/// torch.argmin does), and code[i] · absmax is the dequantized value.
/// The kernels are plain float32 loops over the tensors' storage, parallel over blocks: the same IEEE float32
/// operations as the torch ops, so the same bits, at a fraction of the time and with no temporaries.
/// </summary>
public static class BlockQuantizer
{
    private const int BlocksPerTask = 1024;

    /// <summary>
    /// 4-bit codes of <paramref name="weight"/> packed two per byte (first value of a pair in the high nibble, an odd
    /// tail padded with code 0) and the float32 absmax per block.
    /// </summary>
    public static (Tensor Packed, Tensor Absmax) Quantize4Bit(Tensor weight, FourBitType type, int blockSize)
    {
        if (blockSize < 2 || blockSize % 2 != 0) throw new ArgumentException("block size must be even", nameof(blockSize));
        return QuantizeBlockwise(weight, new NearestCode(CodeBooks.For(type)), blockSize, packNibbles: true);
    }

    /// <summary>bitsandbytes quantize_blockwise: 8-bit codes (uint8, one per element) into <paramref name="code"/> and absmax per block.</summary>
    public static (Tensor Codes, Tensor Absmax) Quantize8Bit(Tensor values, IReadOnlyList<float> code, int blockSize) =>
        QuantizeBlockwise(values, new NearestCode(code), blockSize, packNibbles: false);

    /// <summary>Inverse of <see cref="Quantize4Bit"/>: code[nibble] · absmax, in <paramref name="dtype"/>, reshaped to <paramref name="shape"/>.</summary>
    public static Tensor Dequantize4Bit(Tensor packed, Tensor absmax, FourBitType type, int blockSize, long[] shape, ScalarType dtype)
    {
        // Every intermediate handle (reshape, to, contiguous) is disposed by the scope: an undisposed handle keeps its
        // storage alive until a finalizer runs, which for a loaded weight means the whole dense model.
        using var scope = NewDisposeScope();
        var code = CodeBooks.For(type).ToArray();
        long n = shape.Aggregate(1L, (a, b) => a * b);
        var bytes = packed.reshape(-1).contiguous();
        var scales = absmax.to(ScalarType.Float32).contiguous();
        var result = empty(n, ScalarType.Float32);
        unsafe
        {
            var source = (byte*)Pointer(bytes);
            var scale = (float*)Pointer(scales);
            var target = (float*)Pointer(result);
            ForBlocks(n, blockSize, (block, start, count) =>
            {
                float a = scale[block];
                for (long i = start; i < start + count; i++)
                {
                    int b = source[i >> 1];
                    target[i] = code[(i & 1) == 0 ? b >> 4 : b & 15] * a;
                }
            });
        }
        return Finish(result, shape, dtype).MoveToOuterDisposeScope();
    }

    /// <summary>bitsandbytes dequantize_blockwise: code[q] · absmax of q's block, float32, flat.</summary>
    public static Tensor Dequantize8Bit(Tensor codes, Tensor absmax, IReadOnlyList<float> code, int blockSize)
    {
        using var scope = NewDisposeScope();
        var book = code.ToArray();
        var bytes = codes.reshape(-1).contiguous();
        var scales = absmax.to(ScalarType.Float32).contiguous();
        long n = bytes.numel();
        var result = empty(n, ScalarType.Float32);
        unsafe
        {
            var source = (byte*)Pointer(bytes);
            var scale = (float*)Pointer(scales);
            var target = (float*)Pointer(result);
            ForBlocks(n, blockSize, (block, start, count) =>
            {
                float a = scale[block];
                for (long i = start; i < start + count; i++) target[i] = book[source[i]] * a;
            });
        }
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// bitsandbytes int8_vectorwise_quant without outliers: per row absmax (float32) and round(x · (127 / absmax)) as
    /// int8, where 127 / absmax is reciprocal(absmax) · 127 (Python's scalar / tensor) and rounding is half to even.
    /// An all-zero row gets codes 0.
    /// </summary>
    public static (Tensor Codes, Tensor RowAbsmax) QuantizeRows8Bit(Tensor weight)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var dense = weight.detach().to(ScalarType.Float32).contiguous();
        long rows = dense.shape[0], columns = dense.numel() / Math.Max(1, rows);
        var codes = empty(dense.shape, ScalarType.Int8);
        var absmax = empty(rows, ScalarType.Float32);
        unsafe
        {
            var source = (float*)Pointer(dense);
            var scale = (float*)Pointer(absmax);
            var target = (sbyte*)Pointer(codes);
            ForBlocks(rows * columns, (int)columns, (row, start, count) =>
            {
                float max = 0;
                for (long i = start; i < start + count; i++) max = MathF.Max(max, MathF.Abs(source[i]));
                scale[row] = max;
                float factor = (1f / max) * 127f;
                for (long i = start; i < start + count; i++)
                    target[i] = max == 0 ? (sbyte)0 : (sbyte)MathF.Round(source[i] * factor, MidpointRounding.ToEven);
            });
        }
        return (codes.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary>bitsandbytes int8_vectorwise_dequant: q · absmax · (1/127 as float32), per row.</summary>
    public static Tensor DequantizeRows8Bit(Tensor codes, Tensor rowAbsmax, ScalarType dtype)
    {
        const float inverse127 = 7.874015718698502e-3f;
        using var scope = NewDisposeScope();
        var source8 = codes.contiguous();
        var scales = rowAbsmax.to(ScalarType.Float32).contiguous();
        long rows = codes.shape[0], columns = codes.numel() / Math.Max(1, rows);
        var result = empty(codes.numel(), ScalarType.Float32);
        unsafe
        {
            var source = (sbyte*)Pointer(source8);
            var scale = (float*)Pointer(scales);
            var target = (float*)Pointer(result);
            ForBlocks(rows * columns, (int)columns, (row, start, count) =>
            {
                float a = scale[row];
                for (long i = start; i < start + count; i++) target[i] = source[i] * a * inverse127;
            });
        }
        return Finish(result, codes.shape, dtype).MoveToOuterDisposeScope();
    }

    /// <summary>Called inside a dispose scope: the float32 buffer goes with the scope when a conversion replaces it.</summary>
    private static Tensor Finish(Tensor result, long[] shape, ScalarType dtype)
    {
        var shaped = result.view(shape);
        return dtype == ScalarType.Float32 ? shaped : shaped.to(dtype);
    }

    private static (Tensor Codes, Tensor Absmax) QuantizeBlockwise(Tensor input, NearestCode book, int blockSize, bool packNibbles)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flat = input.detach().reshape(-1).to(ScalarType.Float32).contiguous();
        long n = flat.numel();
        long blocks = (n + blockSize - 1) / blockSize;
        var absmax = zeros(blocks, ScalarType.Float32);
        var codes = zeros(packNibbles ? (n + 1) / 2 : n, ScalarType.Byte);
        unsafe
        {
            var source = (float*)Pointer(flat);
            var scale = (float*)Pointer(absmax);
            var target = (byte*)Pointer(codes);
            ForBlocks(n, blockSize, (block, start, count) =>
            {
                float max = 0;
                for (long i = start; i < start + count; i++) max = MathF.Max(max, MathF.Abs(source[i]));
                scale[block] = max;
                float reciprocal = 1f / max;   // 1/0 = inf, 0·inf = NaN → code 0, as bitsandbytes' argmin
                for (long i = start; i < start + count; i++)
                {
                    float scaled = Math.Clamp(source[i] * reciprocal, -1f, 1f);
                    int q = book.Nearest(scaled);
                    if (!packNibbles) target[i] = (byte)q;
                    else if ((i & 1) == 0) target[i >> 1] = (byte)(q << 4);   // blocks are even-sized: a pair never spans two blocks
                    else target[i >> 1] |= (byte)q;
                }
            });
        }
        return (codes.MoveToOuterDisposeScope(), absmax.MoveToOuterDisposeScope());
    }

    /// <summary>Runs <paramref name="body"/>(block, first element, element count) for every block, in parallel over groups of blocks.</summary>
    private static void ForBlocks(long n, int blockSize, Action<long, long, long> body)
    {
        long blocks = (n + blockSize - 1) / blockSize;
        long tasks = (blocks + BlocksPerTask - 1) / BlocksPerTask;
        Parallel.For(0L, tasks, task =>
        {
            long last = Math.Min(blocks, (task + 1) * BlocksPerTask);
            for (long block = task * BlocksPerTask; block < last; block++)
            {
                long start = block * blockSize;
                body(block, start, Math.Min(blockSize, n - start));
            }
        });
    }

    /// <summary>The storage address of a contiguous CPU tensor (it stays put while the tensor lives: native memory).</summary>
    private static unsafe void* Pointer(Tensor t)
    {
        if (t.device_type != TorchSharp.DeviceType.CPU || !t.is_contiguous()) throw new ArgumentException("expected a contiguous CPU tensor");
        if (t.numel() == 0) return null;
        return System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(t.bytes));
    }

    /// <summary>
    /// argmin_i |x - code[i]| with the first index winning ties: a binary search in the sorted distinct values, then
    /// the nearer neighbour (equal distances: the lower code index). NaN maps to code 0, as argmin over NaN does.
    /// </summary>
    private sealed class NearestCode
    {
        private readonly float[] sortedValues;
        private readonly int[] sortedToCode;

        public NearestCode(IReadOnlyList<float> code)
        {
            // Equal values (FP4's 0 and -0) keep the lowest code index, the one argmin returns.
            var distinct = code.Select((v, i) => (Value: v, Index: i))
                .GroupBy(e => e.Value)
                .Select(g => g.OrderBy(e => e.Index).First())
                .OrderBy(e => e.Value)
                .ToArray();
            sortedValues = distinct.Select(e => e.Value).ToArray();
            sortedToCode = distinct.Select(e => e.Index).ToArray();
        }

        public int Nearest(float x)
        {
            if (float.IsNaN(x)) return 0;
            int lo = 0, hi = sortedValues.Length;   // first position with sortedValues[p] >= x
            while (lo < hi)
            {
                int mid = (lo + hi) >> 1;
                if (sortedValues[mid] < x) lo = mid + 1;
                else hi = mid;
            }
            if (lo == 0) return sortedToCode[0];
            if (lo == sortedValues.Length) return sortedToCode[^1];
            float upperDistance = MathF.Abs(x - sortedValues[lo]);
            float lowerDistance = MathF.Abs(x - sortedValues[lo - 1]);
            int upper = sortedToCode[lo], lower = sortedToCode[lo - 1];
            return upperDistance < lowerDistance || (upperDistance == lowerDistance && upper < lower) ? upper : lower;
        }
    }
}
