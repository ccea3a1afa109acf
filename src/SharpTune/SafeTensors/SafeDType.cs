using static TorchSharp.torch;

namespace SharpTune.SafeTensors;

/// <summary>Element types a safetensors header may name (the subset TorchSharp can hold).</summary>
public enum SafeDType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL }

/// <summary>One tensor as the header describes it. <see cref="DataOffset"/> is absolute in <see cref="FilePath"/>.</summary>
public sealed record TensorEntry(string Name, string FilePath, SafeDType DType, long[] Shape, long DataOffset, long ByteLength)
{
    public long ElementCount => SafeDTypes.ElementCount(Shape);
}

/// <summary>Names, sizes and TorchSharp equivalents of <see cref="SafeDType"/>.</summary>
public static class SafeDTypes
{
    public const string AllowedNames = "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL";

    public static int ElementSize(SafeDType dtype) => dtype switch
    {
        SafeDType.F64 or SafeDType.I64 => 8,
        SafeDType.F32 or SafeDType.I32 => 4,
        SafeDType.F16 or SafeDType.BF16 or SafeDType.I16 => 2,
        SafeDType.I8 or SafeDType.U8 or SafeDType.BOOL => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    public static bool TryParse(string text, out SafeDType dtype)
    {
        // Header names are case-sensitive upper-case, as the Python library writes and requires them.
        foreach (var candidate in Enum.GetValues<SafeDType>())
        {
            if (string.Equals(candidate.ToString(), text, StringComparison.Ordinal))
            {
                dtype = candidate;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    public static ScalarType ToScalarType(SafeDType dtype) => dtype switch
    {
        SafeDType.F64 => ScalarType.Float64,
        SafeDType.F32 => ScalarType.Float32,
        SafeDType.F16 => ScalarType.Float16,
        SafeDType.BF16 => ScalarType.BFloat16,
        SafeDType.I64 => ScalarType.Int64,
        SafeDType.I32 => ScalarType.Int32,
        SafeDType.I16 => ScalarType.Int16,
        SafeDType.I8 => ScalarType.Int8,
        SafeDType.U8 => ScalarType.Byte,
        SafeDType.BOOL => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    public static bool TryFromScalarType(ScalarType type, out SafeDType dtype)
    {
        switch (type)
        {
            case ScalarType.Float64: dtype = SafeDType.F64; return true;
            case ScalarType.Float32: dtype = SafeDType.F32; return true;
            case ScalarType.Float16: dtype = SafeDType.F16; return true;
            case ScalarType.BFloat16: dtype = SafeDType.BF16; return true;
            case ScalarType.Int64: dtype = SafeDType.I64; return true;
            case ScalarType.Int32: dtype = SafeDType.I32; return true;
            case ScalarType.Int16: dtype = SafeDType.I16; return true;
            case ScalarType.Int8: dtype = SafeDType.I8; return true;
            case ScalarType.Byte: dtype = SafeDType.U8; return true;
            case ScalarType.Bool: dtype = SafeDType.BOOL; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>Product of the dimensions; a scalar (empty shape) holds one element. Null on overflow.</summary>
    internal static long? CheckedElementCount(IReadOnlyList<long> shape)
    {
        long count = 1;
        try
        {
            foreach (var dim in shape) count = checked(count * dim);
        }
        catch (OverflowException)
        {
            return null;
        }
        return count;
    }

    internal static long ElementCount(IReadOnlyList<long> shape) => CheckedElementCount(shape) ?? throw new OverflowException("shape element count overflows");

    internal static string FormatShape(IReadOnlyList<long> shape) => "[" + string.Join(", ", shape) + "]";
}
