using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using SharpTune.Files;
using static TorchSharp.torch;

namespace SharpTune.SafeTensors;

/// <summary>
/// Writes .safetensors files byte-for-byte as the Python library does (same tensor order, compact JSON header
/// padded with spaces to a multiple of 8), and transformers-style sharded checkpoints with an index.
/// </summary>
public static partial class SafeTensorsWriter
{
    /// <summary>Bytes handed to the file per write, so a tensor is never copied whole into managed memory.</summary>
    private const long WriteWindowBytes = 16L << 20;

    /// <summary>
    /// Writes one file atomically (temp file in the same folder, then a rename over <paramref name="path"/>).
    /// Tensors may be of any <see cref="SafeDType"/>, on any device, contiguous or not; they are not modified.
    /// <paramref name="metadata"/> becomes <c>__metadata__</c> (omitted when null).
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var items = tensors.ToList();
        var described = Describe(path, items);
        AtomicFile.Write(path, stream => WriteFile(stream, described, metadata));
    }

    /// <summary>
    /// Splits tensors into shards of at most <paramref name="maxShardBytes"/> (in the order given, a tensor larger than
    /// the limit alone in its shard), as huggingface_hub's split_torch_state_dict_into_shards does. One shard is written
    /// as {baseName}.safetensors; more as {baseName}-0000N-of-0000M.safetensors plus {baseName}.safetensors.index.json.
    /// Every file carries <paramref name="metadata"/> with "format": "pt" added when absent (transformers refuses
    /// safetensors metadata without a known format). Files of an earlier save with the same base name that the new
    /// save does not use are removed afterwards, so the folder never offers two checkpoints.
    /// </summary>
    public static void SaveSharded(string directory, IEnumerable<KeyValuePair<string, Tensor>> tensors, long maxShardBytes, IReadOnlyDictionary<string, string>? metadata = null, string baseName = "model")
    {
        CheckShardArguments(maxShardBytes, baseName);
        WriteSharded(directory, Describe(directory, tensors.ToList()), maxShardBytes, metadata, baseName);
    }

    /// <summary>
    /// <see cref="SaveSharded"/> for tensors whose values are produced one at a time as the writer reaches them (each
    /// disposed once written), in <see cref="StreamOrder"/>: the same files, byte for byte, as <see cref="SaveSharded"/>
    /// of the produced tensors, without ever holding more than one of them. The headers come from the declared names,
    /// dtypes and shapes; a produced tensor that differs from its declaration is an error.
    /// </summary>
    public static void SaveShardedStreamed(string directory, IReadOnlyList<StreamedTensor> tensors, long maxShardBytes, IReadOnlyDictionary<string, string>? metadata = null, string baseName = "model")
    {
        CheckShardArguments(maxShardBytes, baseName);
        WriteSharded(directory, DescribeStreamed(directory, tensors), maxShardBytes, metadata, baseName);
    }

    /// <summary>
    /// The order in which <see cref="SaveShardedStreamed"/> produces <paramref name="tensors"/>: shard by shard, each in
    /// its file's data order. Processes that take part in producing the values (a collective gather) follow it.
    /// </summary>
    public static IReadOnlyList<StreamedTensor> StreamOrder(IReadOnlyList<StreamedTensor> tensors, long maxShardBytes)
    {
        var byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        return PlanShards(DescribeStreamed("stream", tensors), maxShardBytes).SelectMany(DataOrder).Select(t => byName[t.Name]).ToList();
    }

    private static void CheckShardArguments(long maxShardBytes, string baseName)
    {
        if (maxShardBytes <= 0)
            throw new InvalidInputException($"max_shard_size {maxShardBytes} must be a positive number of bytes");
        if (string.IsNullOrEmpty(baseName) || baseName.IndexOfAny(['/', '\\']) >= 0)
            throw new InvalidInputException($"shard base name '{baseName}' must be a plain file name");
    }

    private static void WriteSharded(string directory, List<DescribedTensor> described, long maxShardBytes, IReadOnlyDictionary<string, string>? metadata, string baseName)
    {
        Directory.CreateDirectory(directory);

        var fileMetadata = new Dictionary<string, string>(metadata ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        fileMetadata.TryAdd("format", "pt");

        var shards = PlanShards(described, maxShardBytes);
        var singleName = baseName + ".safetensors";
        var indexName = baseName + ".safetensors.index.json";

        if (shards.Count <= 1)
        {
            AtomicFile.Write(Path.Combine(directory, singleName), stream => WriteFile(stream, described, fileMetadata));
            RemoveStale(directory, baseName, keep: [singleName], removeSingle: false, removeIndex: true);
            return;
        }

        var weightMap = new List<KeyValuePair<string, string>>();
        var fileNames = new List<string>();
        for (var i = 0; i < shards.Count; i++)
        {
            var fileName = string.Create(CultureInfo.InvariantCulture, $"{baseName}-{i + 1:D5}-of-{shards.Count:D5}.safetensors");
            fileNames.Add(fileName);
            var shard = shards[i];
            AtomicFile.Write(Path.Combine(directory, fileName), stream => WriteFile(stream, shard, fileMetadata));
            weightMap.AddRange(shard.Select(t => new KeyValuePair<string, string>(t.Name, fileName)));
        }
        var totalSize = described.Sum(t => t.ByteLength);
        var indexJson = IndexJson(totalSize, weightMap);
        AtomicFile.Write(Path.Combine(directory, indexName), stream => stream.Write(Encoding.UTF8.GetBytes(indexJson)));
        RemoveStale(directory, baseName, keep: fileNames, removeSingle: true, removeIndex: false);
    }

    /// <summary>
    /// Parses a shard size as transformers' max_shard_size does: "5GB" = 5·10^9, "500MB", "100KB", "2GiB" = 2·2^30,
    /// "MiB", "KiB"; a lower-case "b" after G/M/K means bits ("5Gb" = 5·10^9/8). A plain integer is bytes.
    /// </summary>
    public static long ParseShardSize(string text)
    {
        var trimmed = text.Trim();
        var match = ShardSizePattern().Match(trimmed);
        if (!match.Success)
            throw new InvalidInputException($"max_shard_size '{text}' is not a size; use an integer number of bytes or an integer followed by GB, MB, KB, GiB, MiB or KiB (e.g. '5GB')");
        if (!long.TryParse(match.Groups["number"].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var number))
            throw new InvalidInputException($"max_shard_size '{text}' is too large");
        var unit = match.Groups["unit"].Value;
        var (multiplier, divisor) = unit.ToUpperInvariant() switch
        {
            "" => (1L, 1L),
            "GIB" => (1L << 30, 1L),
            "MIB" => (1L << 20, 1L),
            "KIB" => (1L << 10, 1L),
            "GB" => (1_000_000_000L, unit.EndsWith('b') ? 8L : 1L),
            "MB" => (1_000_000L, unit.EndsWith('b') ? 8L : 1L),
            "KB" => (1_000L, unit.EndsWith('b') ? 8L : 1L),
            _ => throw new InvalidOperationException("unit matched by the pattern"),
        };
        long bytes;
        try
        {
            bytes = checked(number * multiplier) / divisor;
        }
        catch (OverflowException)
        {
            throw new InvalidInputException($"max_shard_size '{text}' is too large");
        }
        if (bytes <= 0)
            throw new InvalidInputException($"max_shard_size '{text}' must be larger than zero bytes");
        return bytes;
    }

    [GeneratedRegex(@"^(?<number>[0-9]+)\s*(?<unit>(?i:GIB|MIB|KIB|GB|MB|KB)?)$", RegexOptions.CultureInvariant)]
    private static partial Regex ShardSizePattern();

    /// <summary>A tensor to write; <paramref name="Produced"/>: <paramref name="Values"/> makes it anew, and the writer disposes it after writing.</summary>
    internal sealed record DescribedTensor(string Name, Func<Tensor> Values, bool Produced, SafeDType DType, long[] Shape, long ByteLength);

    private static List<DescribedTensor> Describe(string target, List<KeyValuePair<string, Tensor>> items) =>
        Describe(target, items.Select(item => (item.Key, item.Value.dtype, item.Value.shape, (Func<Tensor>)(() => item.Value), false)));

    private static List<DescribedTensor> DescribeStreamed(string target, IReadOnlyList<StreamedTensor> tensors) =>
        Describe(target, tensors.Select(t => (t.Name, t.DType, t.Shape, t.Produce, true)));

    /// <summary>Checks names and dtypes and sizes each tensor; <c>Produced</c>: its values are made by <c>Values</c> when written.</summary>
    private static List<DescribedTensor> Describe(string target, IEnumerable<(string Name, ScalarType DType, long[] Shape, Func<Tensor> Values, bool Produced)> items)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var described = new List<DescribedTensor>();
        foreach (var (name, scalarType, shape, values, produced) in items)
        {
            if (name == SafeTensorsHeader.MetadataKey)
                throw new InvalidInputException($"{target}: '{SafeTensorsHeader.MetadataKey}' is reserved and cannot name a tensor");
            if (!seen.Add(name))
                throw new InvalidInputException($"{target}: tensor '{name}' is given twice");
            if (!SafeDTypes.TryFromScalarType(scalarType, out var dtype))
                throw new InvalidInputException($"{target}: tensor '{name}' has dtype {scalarType}, which safetensors cannot store here (allowed: {SafeDTypes.AllowedNames})");
            long elements = shape.Aggregate(1L, (a, b) => a * b);
            described.Add(new DescribedTensor(name, values, produced, dtype, shape.ToArray(), elements * SafeDTypes.ElementSize(dtype)));
        }
        return described;
    }

    /// <summary>huggingface_hub's greedy split: fill a shard in the given order until the next tensor would overflow it.</summary>
    private static List<List<DescribedTensor>> PlanShards(List<DescribedTensor> tensors, long maxShardBytes)
    {
        var shards = new List<List<DescribedTensor>>();
        var current = new List<DescribedTensor>();
        long currentSize = 0;
        foreach (var tensor in tensors)
        {
            if (tensor.ByteLength > maxShardBytes)
            {
                shards.Add([tensor]);
                continue;
            }
            if (currentSize + tensor.ByteLength > maxShardBytes && current.Count > 0)
            {
                shards.Add(current);
                current = [];
                currentSize = 0;
            }
            current.Add(tensor);
            currentSize += tensor.ByteLength;
        }
        if (current.Count > 0) shards.Add(current);
        return shards;
    }

    private static void WriteFile(Stream stream, IReadOnlyList<DescribedTensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var ordered = DataOrder(tensors);
        var header = HeaderBytes(ordered, metadata);
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var tensor in ordered) WriteData(stream, tensor);
    }

    /// <summary>The Python library orders a file's data by descending dtype alignment (its Dtype enum order), then by name.</summary>
    private static List<DescribedTensor> DataOrder(IReadOnlyList<DescribedTensor> tensors) =>
        tensors.OrderByDescending(t => RustDtypeRank(t.DType)).ThenBy(t => t.Name, Utf8Ordinal.Instance).ToList();

    /// <summary>Position of each dtype in the Rust safetensors Dtype enum, which sorts tensors in a file.</summary>
    private static int RustDtypeRank(SafeDType dtype) => dtype switch
    {
        SafeDType.BOOL => 0,
        SafeDType.U8 => 1,
        SafeDType.I8 => 2,
        SafeDType.I16 => 5,
        SafeDType.F16 => 7,
        SafeDType.BF16 => 8,
        SafeDType.I32 => 9,
        SafeDType.F32 => 11,
        SafeDType.F64 => 12,
        SafeDType.I64 => 13,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    internal static byte[] HeaderBytes(IReadOnlyList<DescribedTensor> ordered, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new StringBuilder();
        json.Append('{');
        var first = true;
        if (metadata is not null)
        {
            json.Append("\"__metadata__\":{");
            var firstEntry = true;
            foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, Utf8Ordinal.Instance))
            {
                if (!firstEntry) json.Append(',');
                firstEntry = false;
                AppendJsonString(json, key, escapeNonAscii: false);
                json.Append(':');
                AppendJsonString(json, value, escapeNonAscii: false);
            }
            json.Append('}');
            first = false;
        }
        long offset = 0;
        foreach (var tensor in ordered)
        {
            if (!first) json.Append(',');
            first = false;
            AppendJsonString(json, tensor.Name, escapeNonAscii: false);
            json.Append(":{\"dtype\":\"").Append(tensor.DType.ToString()).Append("\",\"shape\":[");
            json.AppendJoin(',', tensor.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture)));
            json.Append("],\"data_offsets\":[").Append(offset.ToString(CultureInfo.InvariantCulture)).Append(',');
            offset += tensor.ByteLength;
            json.Append(offset.ToString(CultureInfo.InvariantCulture)).Append("]}");
        }
        json.Append('}');
        var bytes = Encoding.UTF8.GetBytes(json.ToString());
        var padded = (bytes.Length + 7) / 8 * 8;
        var result = new byte[padded];
        bytes.CopyTo(result, 0);
        result.AsSpan(bytes.Length).Fill((byte)' ');
        return result;
    }

    /// <summary>
    /// A JSON string escaped the way the Python stack writes it: serde_json (safetensors headers) keeps UTF-8 and escapes
    /// only quote, backslash and control characters; json.dumps (index files, ensure_ascii) also escapes past 0x7e.
    /// </summary>
    private static void AppendJsonString(StringBuilder json, string text, bool escapeNonAscii)
    {
        json.Append('"');
        foreach (var c in text)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\b': json.Append("\\b"); break;
                case '\f': json.Append("\\f"); break;
                case '\n': json.Append("\\n"); break;
                case '\r': json.Append("\\r"); break;
                case '\t': json.Append("\\t"); break;
                default:
                    if (c < 0x20 || (escapeNonAscii && c > 0x7e)) json.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else json.Append(c);
                    break;
            }
        }
        json.Append('"');
    }

    /// <summary>The index as transformers writes it: json.dumps(index, indent=2, sort_keys=True) + "\n".</summary>
    internal static string IndexJson(long totalSize, IEnumerable<KeyValuePair<string, string>> weightMap)
    {
        var json = new StringBuilder();
        json.Append("{\n  \"metadata\": {\n    \"total_size\": ").Append(totalSize.ToString(CultureInfo.InvariantCulture)).Append("\n  },\n  \"weight_map\": {");
        var first = true;
        foreach (var (tensor, file) in weightMap.OrderBy(kv => kv.Key, Utf8Ordinal.Instance))
        {
            json.Append(first ? "\n    " : ",\n    ");
            first = false;
            AppendJsonString(json, tensor, escapeNonAscii: true);
            json.Append(": ");
            AppendJsonString(json, file, escapeNonAscii: true);
        }
        json.Append(first ? "}\n}\n" : "\n  }\n}\n");
        return json.ToString();
    }

    private static void WriteData(Stream stream, DescribedTensor described)
    {
        // A produced tensor is made even when empty: producing may be a collective that every process runs in order.
        var values = described.Values();
        try
        {
            if (described.Produced && (!SafeDTypes.TryFromScalarType(values.dtype, out var dtype) || dtype != described.DType || !values.shape.SequenceEqual(described.Shape)))
                throw new InvalidOperationException($"tensor '{described.Name}' was declared {described.DType} [{string.Join(", ", described.Shape)}] but produced {values.dtype} [{string.Join(", ", values.shape)}]");
            if (described.ByteLength > 0) WriteBytes(stream, values, described.DType);
        }
        finally
        {
            if (described.Produced) values.Dispose();
        }
    }

    private static void WriteBytes(Stream stream, Tensor values, SafeDType dtype)
    {
        // Copies only when needed: off-CPU tensors come to the CPU, strided views become contiguous.
        using var scope = NewDisposeScope();
        var tensor = values.detach();
        if (tensor.device_type != DeviceType.CPU) tensor = tensor.cpu();
        if (!tensor.is_contiguous()) tensor = tensor.contiguous();
        var flat = tensor.view(-1);
        var elementSize = SafeDTypes.ElementSize(dtype);
        var windowElements = WriteWindowBytes / elementSize;
        var count = flat.shape[0];
        for (long first = 0; first < count; first += windowElements)
        {
            using var slice = flat.narrow(0, first, Math.Min(windowElements, count - first));
            stream.Write(slice.bytes);
        }
    }

    private static void RemoveStale(string directory, string baseName, IReadOnlyCollection<string> keep, bool removeSingle, bool removeIndex)
    {
        var shardPattern = new Regex("^" + Regex.Escape(baseName) + @"-\d{5}-of-\d{5}\.safetensors$", RegexOptions.CultureInvariant);
        foreach (var file in Directory.EnumerateFiles(directory))
        {
            var name = Path.GetFileName(file);
            if (keep.Contains(name)) continue;
            var stale = shardPattern.IsMatch(name)
                || (removeSingle && name == baseName + ".safetensors")
                || (removeIndex && name == baseName + ".safetensors.index.json");
            if (stale) File.Delete(file);
        }
    }

    /// <summary>Orders strings by their UTF-8 bytes, as Rust's String and Python's str (code points) compare.</summary>
    private sealed class Utf8Ordinal : IComparer<string>
    {
        public static readonly Utf8Ordinal Instance = new();

        public int Compare(string? x, string? y)
        {
            if (ReferenceEquals(x, y)) return 0;
            if (x is null) return -1;
            if (y is null) return 1;
            return Encoding.UTF8.GetBytes(x).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(y));
        }
    }
}

/// <summary>
/// A tensor for <see cref="SafeTensorsWriter.SaveShardedStreamed"/>: name, dtype and shape known up front (they make the
/// header), the values made by <paramref name="Produce"/> only when the writer reaches the tensor, and disposed after.
/// </summary>
public sealed record StreamedTensor(string Name, ScalarType DType, long[] Shape, Func<Tensor> Produce);
