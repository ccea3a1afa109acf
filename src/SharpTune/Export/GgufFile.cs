using System.Text;
using SharpTune.SafeTensors;
using SharpTune.Files;

namespace SharpTune.Export;

/// <summary>GGUF metadata value types (gguf.md: enum gguf_metadata_value_type).</summary>
public enum GgufValueType : uint
{
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7, String = 8, Array = 9,
    UInt64 = 10, Int64 = 11, Float64 = 12,
}

/// <summary>One typed metadata value; arrays hold their element type and a list of elements (scalars or strings).</summary>
public sealed record GgufValue(GgufValueType Type, object Value, GgufValueType ElementType = GgufValueType.UInt8)
{
    public static GgufValue U32(long v) => new(GgufValueType.UInt32, checked((uint)v));
    public static GgufValue I32(int v) => new(GgufValueType.Int32, v);
    public static GgufValue F32(double v) => new(GgufValueType.Float32, (float)v);
    public static GgufValue Bool(bool v) => new(GgufValueType.Bool, v);
    public static GgufValue Str(string v) => new(GgufValueType.String, v);
    public static GgufValue Strings(IReadOnlyList<string> v) => new(GgufValueType.Array, v, GgufValueType.String);
    public static GgufValue Floats(IReadOnlyList<float> v) => new(GgufValueType.Array, v, GgufValueType.Float32);
    public static GgufValue Ints(IReadOnlyList<int> v) => new(GgufValueType.Array, v, GgufValueType.Int32);
}

/// <summary>
/// A tensor to write: its PyTorch shape (rows first; GGUF stores the dimensions reversed, ne[0] = columns), its ggml
/// type, and a function producing its float32 values row-major when the writer reaches it (one tensor in memory at a time).
/// </summary>
public sealed record GgufTensor(string Name, long[] Shape, GgmlType Type, Func<float[]> Values)
{
    public long Columns => Shape[^1];
    public long Elements => Shape.Aggregate(1L, (a, b) => a * b);
    public long Bytes => Elements / Columns * GgmlTypes.RowBytes(Type, Columns);
}

/// <summary>
/// GGUF version 3 as docs/gguf.md of llama.cpp specifies it: little-endian header (magic, version, tensor count, KV count),
/// typed key/values, tensor infos (name, dims innermost first, type, offset into the data section), then each tensor's
/// data at an offset that is a multiple of general.alignment.
/// </summary>
public static class GgufFile
{
    public const uint Magic = 0x46554747; // "GGUF" read as a little-endian uint32
    public const uint Version = 3;
    public const int DefaultAlignment = 32;

    /// <summary>Writes the file atomically (temp file + rename); the metadata must contain general.alignment when it is not 32.</summary>
    public static void Write(string path, IReadOnlyList<KeyValuePair<string, GgufValue>> metadata, IReadOnlyList<GgufTensor> tensors, int alignment = DefaultAlignment)
    {
        AtomicFile.Write(path, stream =>
        {
            using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            w.Write(Magic);
            w.Write(Version);
            w.Write((ulong)tensors.Count);
            w.Write((ulong)metadata.Count);
            foreach (var (key, value) in metadata)
            {
                WriteString(w, key);
                w.Write((uint)value.Type);
                WriteValue(w, value.Type, value.Value, value.ElementType);
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Shape.Length);
                for (int d = t.Shape.Length - 1; d >= 0; d--) w.Write((ulong)t.Shape[d]);
                w.Write((uint)t.Type);
                w.Write((ulong)offset);
                offset = Align(offset + t.Bytes, alignment);
            }
            w.Flush();
            Pad(stream, alignment);
            long dataStart = stream.Position;
            foreach (var t in tensors)
            {
                var values = t.Values();
                if (values.LongLength != t.Elements)
                    throw new InvalidOperationException($"{t.Name}: {values.LongLength} values for shape [{string.Join(", ", t.Shape)}]");
                long rowBytes = GgmlTypes.RowBytes(t.Type, t.Columns);
                var row = new byte[rowBytes];
                for (long r = 0; r < t.Elements / t.Columns; r++)
                {
                    GgmlQuants.QuantizeRow(t.Type, values.AsSpan((int)(r * t.Columns), (int)t.Columns), row);
                    stream.Write(row);
                }
                Pad(stream, alignment, dataStart);
            }
        });
    }

    private static long Align(long x, int alignment) => (x + alignment - 1) / alignment * alignment;

    private static void Pad(Stream stream, int alignment, long origin = 0)
    {
        long position = stream.Position - origin;
        long padded = Align(position, alignment);
        for (long i = position; i < padded; i++) stream.WriteByte(0);
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValueType type, object value, GgufValueType elementType)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)value); break;
            case GgufValueType.Int8: w.Write((sbyte)value); break;
            case GgufValueType.UInt16: w.Write((ushort)value); break;
            case GgufValueType.Int16: w.Write((short)value); break;
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((bool)value ? (byte)1 : (byte)0); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            case GgufValueType.Float64: w.Write((double)value); break;
            case GgufValueType.Array:
                var items = (System.Collections.IList)value;
                w.Write((uint)elementType);
                w.Write((ulong)items.Count);
                foreach (var item in items) WriteValue(w, elementType, item!, GgufValueType.UInt8);
                break;
            default: throw new ArgumentOutOfRangeException(nameof(type));
        }
    }

    /// <summary>What <see cref="Read"/> finds: metadata in file order, tensor infos, and where the data section starts.</summary>
    public sealed record Contents(uint Version, IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata, IReadOnlyList<TensorInfo> Tensors, long DataOffset)
    {
        public GgufValue this[string key] => Metadata.First(m => m.Key == key).Value;
        public bool Has(string key) => Metadata.Any(m => m.Key == key);
    }

    /// <summary>A tensor info as stored: dimensions innermost first.</summary>
    public sealed record TensorInfo(string Name, long[] Dims, GgmlType Type, long Offset);

    /// <summary>Parses a GGUF file's header, metadata and tensor infos (the data is read separately with <see cref="ReadTensorBytes"/>).</summary>
    public static Contents Read(string path)
    {
        using var stream = File.OpenRead(path);
        using var r = new BinaryReader(stream, Encoding.UTF8);
        if (r.ReadUInt32() != Magic) throw new InvalidInputException($"{path}: not a GGUF file (bad magic)");
        uint version = r.ReadUInt32();
        if (version != 3) throw new InvalidInputException($"{path}: GGUF version {version} is not supported; supported: 3");
        long tensorCount = (long)r.ReadUInt64(), kvCount = (long)r.ReadUInt64();
        var metadata = new List<KeyValuePair<string, GgufValue>>();
        for (long i = 0; i < kvCount; i++)
        {
            var key = ReadString(r);
            var type = (GgufValueType)r.ReadUInt32();
            metadata.Add(KeyValuePair.Create(key, ReadValue(r, type)));
        }
        var tensors = new List<TensorInfo>();
        for (long i = 0; i < tensorCount; i++)
        {
            var name = ReadString(r);
            var dims = new long[r.ReadUInt32()];
            for (int d = 0; d < dims.Length; d++) dims[d] = (long)r.ReadUInt64();
            tensors.Add(new TensorInfo(name, dims, (GgmlType)r.ReadUInt32(), (long)r.ReadUInt64()));
        }
        int alignment = metadata.FirstOrDefault(m => m.Key == "general.alignment").Value?.Value is uint a ? (int)a : DefaultAlignment;
        return new Contents(version, metadata, tensors, Align(stream.Position, alignment));
    }

    public static byte[] ReadTensorBytes(string path, Contents contents, TensorInfo tensor)
    {
        long elements = tensor.Dims.Aggregate(1L, (x, y) => x * y);
        var bytes = new byte[elements / tensor.Dims[0] * GgmlTypes.RowBytes(tensor.Type, tensor.Dims[0])];
        using var stream = File.OpenRead(path);
        stream.Seek(contents.DataOffset + tensor.Offset, SeekOrigin.Begin);
        stream.ReadExactly(bytes);
        return bytes;
    }

    private static string ReadString(BinaryReader r) => Encoding.UTF8.GetString(r.ReadBytes(checked((int)r.ReadUInt64())));

    private static GgufValue ReadValue(BinaryReader r, GgufValueType type)
    {
        if (type != GgufValueType.Array) return new GgufValue(type, ReadScalar(r, type));
        var elementType = (GgufValueType)r.ReadUInt32();
        long count = (long)r.ReadUInt64();
        var items = new List<object>();
        for (long i = 0; i < count; i++) items.Add(ReadScalar(r, elementType));
        return new GgufValue(type, items, elementType);
    }

    private static object ReadScalar(BinaryReader r, GgufValueType type) => type switch
    {
        GgufValueType.UInt8 => r.ReadByte(),
        GgufValueType.Int8 => r.ReadSByte(),
        GgufValueType.UInt16 => r.ReadUInt16(),
        GgufValueType.Int16 => r.ReadInt16(),
        GgufValueType.UInt32 => r.ReadUInt32(),
        GgufValueType.Int32 => r.ReadInt32(),
        GgufValueType.Float32 => r.ReadSingle(),
        GgufValueType.Bool => r.ReadByte() != 0,
        GgufValueType.String => ReadString(r),
        GgufValueType.UInt64 => r.ReadUInt64(),
        GgufValueType.Int64 => r.ReadInt64(),
        GgufValueType.Float64 => r.ReadDouble(),
        _ => throw new InvalidInputException($"GGUF value type {(uint)type} is not valid here"),
    };
}
