using System.Buffers.Binary;
using System.Text.Json;

namespace SharpTune.SafeTensors;

/// <summary>The parsed and validated header of one .safetensors file.</summary>
internal sealed record SafeTensorsHeader(string FilePath, long FileLength, IReadOnlyList<TensorEntry> Tensors, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>The Python library refuses larger headers as a guard against hostile files; so do we.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    /// <summary>
    /// Reads the 8-byte length, the JSON header, and checks the data offsets the way the Python library does:
    /// tensors sorted by offset must tile the data region exactly (no gap, no overlap), each span must equal
    /// element count × element size, and the data region must end exactly at the end of the file.
    /// </summary>
    public static SafeTensorsHeader Read(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        var fileLength = stream.Length;
        if (fileLength < 8)
            throw new InvalidInputException($"{path}: file is {fileLength} bytes, shorter than the 8-byte header length that starts a safetensors file");

        Span<byte> prefix = stackalloc byte[8];
        stream.ReadExactly(prefix);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(fileLength - 8))
            throw new InvalidInputException($"{path}: header length {headerLength} is larger than the {fileLength - 8} bytes that follow it; the file is truncated or not a safetensors file");
        if (headerLength > MaxHeaderBytes)
            throw new InvalidInputException($"{path}: header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit of the safetensors format");

        var headerBytes = new byte[headerLength];
        stream.ReadExactly(headerBytes);
        var dataStart = 8 + (long)headerLength;
        return Parse(path, fileLength, dataStart, headerBytes);
    }

    private static SafeTensorsHeader Parse(string path, long fileLength, long dataStart, byte[] headerBytes)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(headerBytes);
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: header is not valid JSON ({FirstLine(e.Message)})");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidInputException($"{path}: header is a JSON {root.ValueKind.ToString().ToLowerInvariant()}, expected an object of tensor names");

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var raw = new List<(string Name, SafeDType DType, long[] Shape, long Begin, long End)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in root.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                    throw new InvalidInputException($"{path}: key '{property.Name}' appears twice in the header");
                if (property.Name == MetadataKey)
                {
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                raw.Add(ReadTensor(path, property.Name, property.Value));
            }

            var dataLength = fileLength - dataStart;
            var expectedBegin = 0L;
            var tensors = new List<TensorEntry>(raw.Count);
            foreach (var (name, dtype, shape, begin, end) in raw.OrderBy(t => t.Begin).ThenBy(t => t.End))
            {
                if (begin != expectedBegin || end < begin)
                {
                    var why = begin < expectedBegin || end < begin ? "overlap the previous tensor or run backwards" : "leave a gap after the previous tensor";
                    throw new InvalidInputException($"{path}: tensor '{name}' has data_offsets [{begin}, {end}] that {why} (expected it to begin at {expectedBegin})");
                }
                var count = SafeDTypes.CheckedElementCount(shape);
                var needed = count is { } c ? (long?)SafeDTypes.CheckedElementCount([c, SafeDTypes.ElementSize(dtype)]) : null;
                if (needed != end - begin)
                    throw new InvalidInputException($"{path}: tensor '{name}' has data_offsets [{begin}, {end}] spanning {end - begin} bytes, but shape {SafeDTypes.FormatShape(shape)} of {dtype} needs {(needed is { } n ? n.ToString() : "more than 2^63")} bytes");
                if (end > dataLength)
                    throw new InvalidInputException($"{path}: tensor '{name}' has data_offsets [{begin}, {end}] beyond the {dataLength} data bytes in the file; the file is truncated");
                tensors.Add(new TensorEntry(name, path, dtype, shape, dataStart + begin, end - begin));
                expectedBegin = end;
            }
            if (expectedBegin != dataLength)
                throw new InvalidInputException($"{path}: the header accounts for {expectedBegin} data bytes but the file holds {dataLength} after the header; the file is corrupt");

            return new SafeTensorsHeader(path, fileLength, tensors, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidInputException($"{path}: {MetadataKey} is a JSON {value.ValueKind.ToString().ToLowerInvariant()}, expected an object of strings");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new InvalidInputException($"{path}: {MetadataKey} key '{entry.Name}' is a JSON {entry.Value.ValueKind.ToString().ToLowerInvariant()}, only strings are allowed");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static (string Name, SafeDType DType, long[] Shape, long Begin, long End) ReadTensor(string path, string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidInputException($"{path}: tensor '{name}' is described by a JSON {value.ValueKind.ToString().ToLowerInvariant()}, expected an object with dtype, shape and data_offsets");

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new InvalidInputException($"{path}: tensor '{name}' has no string 'dtype'");
        var dtypeText = dtypeElement.GetString()!;
        if (!SafeDTypes.TryParse(dtypeText, out var dtype))
            throw new InvalidInputException($"{path}: tensor '{name}' has dtype '{dtypeText}', which is not supported (allowed: {SafeDTypes.AllowedNames})");

        var shape = ReadNonNegativeIntegers(path, name, value, "shape");
        var offsets = ReadNonNegativeIntegers(path, name, value, "data_offsets");
        if (offsets.Length != 2)
            throw new InvalidInputException($"{path}: tensor '{name}' has {offsets.Length} data_offsets, expected 2 ([begin, end])");
        return (name, dtype, shape, offsets[0], offsets[1]);
    }

    private static long[] ReadNonNegativeIntegers(string path, string name, JsonElement tensor, string field)
    {
        if (!tensor.TryGetProperty(field, out var array) || array.ValueKind != JsonValueKind.Array)
            throw new InvalidInputException($"{path}: tensor '{name}' has no '{field}' array");
        var values = new long[array.GetArrayLength()];
        var i = 0;
        foreach (var item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out var number) || number < 0)
                throw new InvalidInputException($"{path}: tensor '{name}' has {field} entry {item.GetRawText()}, expected a non-negative integer");
            values[i++] = number;
        }
        return values;
    }

    private static string FirstLine(string text)
    {
        var end = text.IndexOfAny(['\r', '\n']);
        return end < 0 ? text : text[..end];
    }
}
