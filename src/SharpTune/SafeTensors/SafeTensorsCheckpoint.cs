using System.IO.MemoryMappedFiles;
using System.Text.Json;
using static TorchSharp.torch;

namespace SharpTune.SafeTensors;

/// <summary>
/// A safetensors checkpoint opened for reading: one file, or a folder with a single file or an index plus shards.
/// Headers are read at open; tensor data is memory-mapped and copied one tensor at a time into tensors that own their memory.
/// </summary>
public sealed class SafeTensorsCheckpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";
    public const string AdapterFileName = "adapter_model.safetensors";

    /// <summary>
    /// Bytes copied per mapped window. Mapping a window, copying it and unmapping it keeps the file pages out of
    /// this process's resident set, so loading costs the weights plus at most one window, not twice the weights.
    /// </summary>
    private const long CopyWindowBytes = 64L << 20;

    private readonly Dictionary<string, TensorEntry> _entries;
    private readonly List<string> _names;
    private readonly Dictionary<string, MemoryMappedFile> _maps;
    private readonly string _source;
    private bool _disposed;

    private SafeTensorsCheckpoint(string source, List<string> names, Dictionary<string, TensorEntry> entries, IReadOnlyDictionary<string, string> metadata, IEnumerable<string> files)
    {
        _source = source;
        _names = names;
        _entries = entries;
        Metadata = metadata;
        _maps = new Dictionary<string, MemoryMappedFile>(StringComparer.Ordinal);
        try
        {
            foreach (var file in files)
            {
                // A zero-capacity mapping is an error on Linux; a file holding only empty tensors needs none.
                if (entries.Values.Any(e => e.FilePath == file && e.ByteLength > 0))
                    _maps[file] = MemoryMappedFile.CreateFromFile(file, FileMode.Open, mapName: null, capacity: 0, MemoryMappedFileAccess.Read);
            }
        }
        catch
        {
            foreach (var map in _maps.Values) map.Dispose();
            throw;
        }
    }

    /// <summary>Tensor names, in file order (shard by shard, by data offset).</summary>
    public IReadOnlyCollection<string> Names => _names.AsReadOnly();

    /// <summary>The <c>__metadata__</c> strings of the first file (for a sharded checkpoint, the first shard).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>
    /// Opens a .safetensors file, a model.safetensors.index.json file, or a folder holding model.safetensors,
    /// model.safetensors.index.json (+ shards) or adapter_model.safetensors (first found in that order).
    /// </summary>
    public static SafeTensorsCheckpoint Open(string fileOrDirectory)
    {
        if (Directory.Exists(fileOrDirectory))
        {
            var single = Path.Combine(fileOrDirectory, SingleFileName);
            if (File.Exists(single)) return OpenFiles(single, [SafeTensorsHeader.Read(single)]);
            var index = Path.Combine(fileOrDirectory, IndexFileName);
            if (File.Exists(index)) return OpenIndex(index);
            var adapter = Path.Combine(fileOrDirectory, AdapterFileName);
            if (File.Exists(adapter)) return OpenFiles(adapter, [SafeTensorsHeader.Read(adapter)]);
            throw new InvalidInputException($"{fileOrDirectory}: folder holds none of {SingleFileName}, {IndexFileName}, {AdapterFileName}");
        }
        if (File.Exists(fileOrDirectory))
        {
            return fileOrDirectory.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase)
                ? OpenIndex(fileOrDirectory)
                : OpenFiles(fileOrDirectory, [SafeTensorsHeader.Read(fileOrDirectory)]);
        }
        throw new InvalidInputException($"{fileOrDirectory}: no such file or folder (expected a .safetensors file or a folder holding {SingleFileName} or {IndexFileName})");
    }

    private static SafeTensorsCheckpoint OpenFiles(string source, IReadOnlyList<SafeTensorsHeader> headers)
    {
        var entries = new Dictionary<string, TensorEntry>(StringComparer.Ordinal);
        var names = new List<string>();
        foreach (var header in headers)
        {
            foreach (var entry in header.Tensors)
            {
                if (entries.TryGetValue(entry.Name, out var other))
                    throw new InvalidInputException($"{entry.FilePath}: tensor '{entry.Name}' is also stored in {other.FilePath}");
                entries[entry.Name] = entry;
                names.Add(entry.Name);
            }
        }
        var metadata = headers.Count > 0 ? headers[0].Metadata : new Dictionary<string, string>();
        return new SafeTensorsCheckpoint(source, names, entries, metadata, headers.Select(h => h.FilePath));
    }

    /// <summary>
    /// Reads a transformers-style index ({"metadata": {...}, "weight_map": {tensor: shard file}}). Every mapped shard
    /// must exist and hold the tensors the index assigns to it.
    /// </summary>
    private static SafeTensorsCheckpoint OpenIndex(string indexPath)
    {
        var folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var weightMap = ReadWeightMap(indexPath);
        var shardNames = weightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var headers = new List<SafeTensorsHeader>(shardNames.Count);
        var shardPaths = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var shard in shardNames)
        {
            var shardPath = Path.Combine(folder, shard);
            if (!File.Exists(shardPath))
            {
                var tensor = weightMap.First(kv => kv.Value == shard).Key;
                throw new InvalidInputException($"{indexPath}: tensor '{tensor}' is mapped to shard '{shard}', which does not exist in {folder}");
            }
            shardPaths[shard] = shardPath;
            headers.Add(SafeTensorsHeader.Read(shardPath));
        }

        var checkpoint = OpenFiles(indexPath, headers);
        try
        {
            foreach (var (tensor, shard) in weightMap)
            {
                if (!checkpoint._entries.TryGetValue(tensor, out var entry))
                    throw new InvalidInputException($"{indexPath}: tensor '{tensor}' is mapped to shard '{shard}', which has no such tensor");
                if (entry.FilePath != shardPaths[shard])
                    throw new InvalidInputException($"{indexPath}: tensor '{tensor}' is mapped to shard '{shard}' but is stored in {entry.FilePath}");
            }
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
        return checkpoint;
    }

    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{indexPath}: not valid JSON ({e.Message.Split('\n')[0].TrimEnd('\r')})");
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out var map)
                || map.ValueKind != JsonValueKind.Object)
                throw new InvalidInputException($"{indexPath}: no \"weight_map\" object (expected {{\"metadata\": {{...}}, \"weight_map\": {{tensor: shard file}}}})");
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new InvalidInputException($"{indexPath}: weight_map entry '{entry.Name}' is a JSON {entry.Value.ValueKind.ToString().ToLowerInvariant()}, expected a shard file name");
                var shard = entry.Value.GetString()!;
                if (shard.Length == 0 || Path.IsPathRooted(shard) || shard.Split('/', '\\').Contains(".."))
                    throw new InvalidInputException($"{indexPath}: weight_map entry '{entry.Name}' names shard '{shard}', expected a file name inside the index's folder");
                weightMap[entry.Name] = shard;
            }
            return weightMap;
        }
    }

    public bool Contains(string name) => _entries.ContainsKey(name);

    public TensorEntry Info(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_entries.TryGetValue(name, out var entry)) return entry;
        throw new InvalidInputException($"{_source}: no tensor named '{name}' (the checkpoint holds {_entries.Count} tensors{NearestHint(name)})");
    }

    /// <summary>A new CPU tensor owning its memory, in the stored dtype (or converted to <paramref name="asType"/>) and the stored shape.</summary>
    public Tensor Load(string name, ScalarType? asType = null) => LoadEntry(Info(name), asType);

    /// <summary>As <see cref="Load(string, ScalarType?)"/>, first checking the stored shape against the one the caller needs.</summary>
    public Tensor Load(string name, long[] expectedShape, ScalarType? asType = null)
    {
        var entry = Info(name);
        if (!entry.Shape.AsSpan().SequenceEqual(expectedShape))
            throw new InvalidInputException($"{entry.FilePath}: tensor '{name}' has shape {SafeDTypes.FormatShape(entry.Shape)}, the model expects {SafeDTypes.FormatShape(expectedShape)}");
        return LoadEntry(entry, asType);
    }

    private Tensor LoadEntry(TensorEntry entry, ScalarType? asType)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var stored = SafeDTypes.ToScalarType(entry.DType);
        var tensor = empty(entry.Shape, stored, CPU);
        try
        {
            CopyInto(entry, tensor);
            if (asType is not { } target || target == stored) return tensor;
            var converted = tensor.to_type(target);
            tensor.Dispose();
            return converted;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    /// <summary>Copies the stored bytes window by window straight from the mapping into the tensor's storage.</summary>
    private void CopyInto(TensorEntry entry, Tensor tensor)
    {
        if (entry.ByteLength == 0) return;
        var map = _maps[entry.FilePath];
        var elementSize = SafeDTypes.ElementSize(entry.DType);
        var windowElements = CopyWindowBytes / elementSize;
        using var flat = tensor.view(-1);
        var elementCount = entry.ByteLength / elementSize;
        for (long first = 0; first < elementCount; first += windowElements)
        {
            var count = Math.Min(windowElements, elementCount - first);
            var byteCount = count * elementSize;
            using var window = map.CreateViewAccessor(entry.DataOffset + first * elementSize, byteCount, MemoryMappedFileAccess.Read);
            using var slice = flat.narrow(0, first, count);
            CopyFromView(window, slice.bytes, byteCount);
        }
    }

    private static unsafe void CopyFromView(MemoryMappedViewAccessor window, Span<byte> destination, long byteCount)
    {
        if (destination.Length != byteCount)
            throw new InvalidOperationException($"tensor slice holds {destination.Length} bytes, expected {byteCount}");
        byte* pointer = null;
        var handle = window.SafeMemoryMappedViewHandle;
        handle.AcquirePointer(ref pointer);
        try
        {
            new ReadOnlySpan<byte>(pointer + window.PointerOffset, destination.Length).CopyTo(destination);
        }
        finally
        {
            handle.ReleasePointer();
        }
    }

    private string NearestHint(string name)
    {
        // Most misses are a key prefix problem (base_model.model., model.): offer the stored name that differs only there.
        for (var dot = name.IndexOf('.'); dot >= 0; dot = name.IndexOf('.', dot + 1))
        {
            var suffix = name[(dot + 1)..];
            if (_entries.ContainsKey(suffix)) return $"; a similar one is '{suffix}'";
        }
        var longer = _names.FirstOrDefault(n => n.EndsWith("." + name, StringComparison.Ordinal));
        return longer is null ? "" : $"; a similar one is '{longer}'";
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var map in _maps.Values) map.Dispose();
        _maps.Clear();
    }
}
