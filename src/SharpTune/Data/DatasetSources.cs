using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsvHelper;
using CsvHelper.Configuration;
using Parquet;
using Parquet.Serialization;
using SharpTune.Config;
using SharpTune.Hub;

namespace SharpTune.Data;

/// <summary>One row of a dataset file and where it came from (1-based row: line for jsonl/txt/csv, element index otherwise).</summary>
public sealed record SourceRow(JsonNode? Value, string File, long Row)
{
    /// <summary>Why the row could not be read (not JSON, invalid UTF-8, a repeated key, ...); Value is null then.</summary>
    public string? Error { get; init; }

    public string Location => $"{File}:{Row}";
}

/// <summary>The files of one part of a split expression and the rows it keeps.</summary>
public sealed record SplitPart(IReadOnlyList<string> Files, SplitSlice Slice);

/// <summary>File formats a dataset file can have.</summary>
public enum SourceFileKind { Json, Jsonl, Parquet, Csv, Tsv, Text }

/// <summary>
/// Finds the files a `datasets:` entry names (file, folder, glob, data_files, split, Hugging Face cache repo id)
/// and streams their rows as JSON nodes. jsonl, csv, txt and top-level json arrays are read incrementally; parquet one row group at a time.
/// </summary>
public static class DatasetSources
{
    private static readonly string[] KnownExtensions = [".json", ".jsonl", ".ndjson", ".parquet", ".csv", ".tsv", ".txt"];
    private static readonly string[] SplitNames = ["train", "test", "validation", "valid", "val", "dev", "eval"];

    /// <summary>The files of one dataset entry, in a stable (ordinal) order.</summary>
    public static IReadOnlyList<string> ResolveFiles(DatasetConfig dataset, string configDir, string key, HubLookup? hub = null) =>
        ResolveParts(dataset, configDir, key, hub).SelectMany(p => p.Files).Distinct().ToList();

    /// <summary>
    /// The files of each part of the split expression (train[:10%]+test), with the rows each part keeps. A path that is
    /// neither a file, a folder nor a glob and has the form of a repo id is a hub dataset, fetched into the cache on first use.
    /// </summary>
    public static IReadOnlyList<SplitPart> ResolveParts(DatasetConfig dataset, string configDir, string key, HubLookup? hub = null)
    {
        string path = dataset.Path ?? throw new InvalidInputException($"{key}.path: missing; expected a file, folder, glob or Hugging Face dataset id");
        var slices = SplitSlices.Parse(dataset.Split, key);
        string full = Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(configDir, path));
        IReadOnlyList<string> Same(IReadOnlyList<string> files) => files;
        if (File.Exists(full))
            return slices.Select(s => new SplitPart(Same([full]), s)).ToList();
        if (Directory.Exists(full))
            return slices.Select(s => new SplitPart(FromFolder(full, dataset, s.Split, key), s)).ToList();
        if (path.IndexOfAny(['*', '?']) >= 0)
        {
            var matches = Glob(full);
            if (matches.Count == 0) throw new InvalidInputException($"{key}.path: glob {path} matched no files (looked under {GlobRoot(full)})");
            return slices.Select(s => new SplitPart(matches, s)).ToList();
        }
        bool localFile = HasDataFileExtension(path);
        if (NamesHubDataset(path))
        {
            var found = DatasetLocator.Resolve(path, dataset.Revision, dataset.Name, dataset.DataFiles, key, hub);
            var resolved = dataset with { Name = found.Name };
            return slices.Select(s => new SplitPart(FromFolder(found.Folder, resolved, s.Split, key), s)).ToList();
        }
        throw new InvalidInputException(
            $"{key}.path: {path} not found (tried {full}{(localFile ? "" : " and the Hugging Face hub")}); expected a data file, folder, glob or a Hugging Face dataset id (owner/name)");
    }

    /// <summary>
    /// Whether a path that is neither a file, a folder nor a glob here names a Hugging Face dataset: it has the form of a
    /// repo id (owner/name) and is not written as a local path. "data/train.jsonl" has the form of a repo id too; a data
    /// file extension says it was meant as a local file.
    /// </summary>
    public static bool NamesHubDataset(string path) =>
        !HasDataFileExtension(path) && !path.StartsWith('.') && !Path.IsPathRooted(path) && HubRepo.LooksLikeId(path);

    private static bool HasDataFileExtension(string path) => KnownExtensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>The rows of a dataset entry: each part's files in order, cut to its slice.</summary>
    public static IEnumerable<SourceRow> ReadParts(DatasetConfig dataset, IReadOnlyList<SplitPart> parts)
    {
        foreach (var part in parts)
        {
            IEnumerable<SourceRow> rows = part.Files.SelectMany(file =>
            {
                var kind = KindOf(file, dataset.DsType);
                return ReadRows(file, kind, dataset.Field is { } f && kind == SourceFileKind.Json ? f : null);
            });
            if (!part.Slice.IsWhole)
            {
                long count = part.Slice.NeedsCount || part.Slice.To is null ? part.Files.Sum(f => CountRows(f, KindOf(f, dataset.DsType), dataset.Field)) : long.MaxValue;
                var (start, end) = part.Slice.Bounds(count);
                rows = rows.Skip((int)Math.Min(start, int.MaxValue)).Take((int)Math.Min(Math.Max(0, end - start), int.MaxValue));
            }
            foreach (var row in rows) yield return row;
        }
    }

    /// <summary>Rows in a file (parquet: from its footer; other formats: one read through).</summary>
    public static long CountRows(string file, SourceFileKind kind, string? field = null)
    {
        if (kind != SourceFileKind.Parquet) return ReadRows(file, kind, kind == SourceFileKind.Json ? field : null).LongCount();
        using var stream = File.OpenRead(file);
        try
        {
            var reader = ParquetReader.CreateAsync(stream, leaveStreamOpen: true).GetAwaiter().GetResult();
            long rows = reader.Metadata?.NumRows ?? 0;
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
            return rows;
        }
        catch (Exception e) when (e is not InvalidInputException)
        {
            throw new InvalidInputException($"{file}: not a readable parquet file ({FirstSentence(e.Message)})");
        }
    }

    private static IReadOnlyList<string> FromFolder(string folder, DatasetConfig dataset, string split, string key)
    {
        // A dataset configuration (name:) is a subfolder in Hugging Face repos: NAME/train-*.parquet or data/NAME/...
        if (dataset.Name is { Length: > 0 } name)
        {
            string? sub = new[] { Path.Combine(folder, name), Path.Combine(folder, "data", name) }.FirstOrDefault(Directory.Exists)
                ?? throw new InvalidInputException($"{key}.name: {name} has no folder in {folder}; expected {name}/ or data/{name}/");
            folder = sub;
        }
        if (dataset.DataFiles.Count > 0)
        {
            var files = new List<string>();
            foreach (var pattern in dataset.DataFiles)
            {
                string candidate = Path.GetFullPath(Path.Combine(folder, pattern));
                if (File.Exists(candidate)) { files.Add(candidate); continue; }
                var matches = pattern.IndexOfAny(['*', '?']) >= 0 ? Glob(candidate) : [];
                if (matches.Count == 0) throw new InvalidInputException($"{key}.data_files: {pattern} not found under {folder}");
                files.AddRange(matches);
            }
            return files;
        }
        var all = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(HasDataFileExtension)
            .Where(f => !Path.GetRelativePath(folder, f).Split(Path.DirectorySeparatorChar).Any(p => p.StartsWith('.')))
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();
        if (all.Count == 0) throw new InvalidInputException($"{key}.path: folder {folder} holds no .json/.jsonl/.parquet/.csv/.tsv/.txt files");
        // Hugging Face layouts name the split in the file or folder name (data/train-00000-of-00001.parquet, train.jsonl, test/).
        var bySplit = all.Where(f => SplitOf(folder, f) != null).ToList();
        if (bySplit.Count == 0) return all;
        var wanted = bySplit.Where(f => SplitOf(folder, f) == split.ToLowerInvariant()).ToList();
        if (wanted.Count == 0)
        {
            var found = bySplit.Select(f => SplitOf(folder, f)!).Distinct().Order();
            throw new InvalidInputException($"{key}.split: {split} not in {folder}; splits found: {string.Join(", ", found)}");
        }
        return wanted;
    }

    private static string? SplitOf(string folder, string file)
    {
        foreach (var part in Path.GetRelativePath(folder, file).Split(Path.DirectorySeparatorChar))
        {
            string stem = Path.GetFileNameWithoutExtension(part).ToLowerInvariant();
            foreach (var split in SplitNames)
                if (stem == split || stem.StartsWith(split + "-") || stem.StartsWith(split + "_") || stem.StartsWith(split + "."))
                    return split;
        }
        return null;
    }

    private static string GlobRoot(string pattern)
    {
        int wild = pattern.IndexOfAny(['*', '?']);
        return Path.GetDirectoryName(pattern[..wild] + "x") ?? ".";
    }

    /// <summary>Glob with *, ? within a path segment and ** across folders.</summary>
    public static IReadOnlyList<string> Glob(string pattern)
    {
        string root = GlobRoot(pattern);
        if (!Directory.Exists(root)) return [];
        string rel = Path.GetRelativePath(root, pattern).Replace('\\', '/');
        var regex = new System.Text.RegularExpressions.Regex("^" + string.Concat(rel.Split("**/").Select((p, i) =>
            (i > 0 ? "(.*/)?" : "") + System.Text.RegularExpressions.Regex.Escape(p).Replace(@"\*\*", ".*").Replace(@"\*", "[^/]*").Replace(@"\?", "[^/]"))) + "$");
        return Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Where(f => regex.IsMatch(Path.GetRelativePath(root, f).Replace('\\', '/')))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
    }

    public static SourceFileKind KindOf(string file, DatasetFileType? declared)
    {
        if (declared is { } d)
            return d switch
            {
                DatasetFileType.Json => SourceFileKind.Json,
                DatasetFileType.Jsonl => SourceFileKind.Jsonl,
                DatasetFileType.Parquet => SourceFileKind.Parquet,
                DatasetFileType.Csv => file.EndsWith(".tsv", StringComparison.OrdinalIgnoreCase) ? SourceFileKind.Tsv : SourceFileKind.Csv,
                _ => SourceFileKind.Text,
            };
        return Path.GetExtension(file).ToLowerInvariant() switch
        {
            ".json" => SourceFileKind.Json,
            ".jsonl" or ".ndjson" => SourceFileKind.Jsonl,
            ".parquet" => SourceFileKind.Parquet,
            ".csv" => SourceFileKind.Csv,
            ".tsv" => SourceFileKind.Tsv,
            ".txt" => SourceFileKind.Text,
            var ext => throw new InvalidInputException(
                $"{file}: unknown data file extension '{ext}'; expected .json, .jsonl, .parquet, .csv, .tsv or .txt (or set ds_type)"),
        };
    }

    /// <summary>Streams the rows of one file. <paramref name="field"/> names a nested list holding the rows in a single JSON document.</summary>
    public static IEnumerable<SourceRow> ReadRows(string file, SourceFileKind kind, string? field = null) => kind switch
    {
        SourceFileKind.Jsonl => ReadJsonl(file),
        SourceFileKind.Json => ReadJson(file, field),
        SourceFileKind.Parquet => ReadParquet(file),
        SourceFileKind.Csv => ReadDelimited(file, ","),
        SourceFileKind.Tsv => ReadDelimited(file, "\t"),
        _ => ReadText(file),
    };

    private static IEnumerable<SourceRow> ReadJsonl(string file)
    {
        foreach (var line in Utf8Lines.Read(file))
        {
            if (Utf8Lines.IsBlank(line.Bytes.Span)) continue;
            JsonNode? node = null;
            string? error = LineProblem(line, out var where);
            if (error == null)
            {
                try { node = StrictJson.Parse(line.Bytes, where); }
                catch (StrictJsonException e) { error = e.Message + (line.Terminated || e.Offset == null ? "" : "; the file ends inside this line (cut off?)"); }
            }
            yield return new SourceRow(node, file, line.Number) { Error = error };
        }
    }

    /// <summary>A NUL byte: the line is binary (a zero-filled block after a crash, a wrong file), not text; null when none.</summary>
    private static string? LineProblem(ByteLine line, out Func<long, string> where)
    {
        long lineOffset = line.Offset;
        where = offset => $"byte {offset + 1} of the line (offset {lineOffset + offset} in the file)";
        int nul = line.Bytes.Span.IndexOf((byte)0);
        return nul < 0 ? null : $"NUL byte at {where(nul)}; expected text";
    }

    private static IEnumerable<SourceRow> ReadJson(string file, string? field)
    {
        char first = FirstNonSpace(file);
        if (first == '[')
        {
            foreach (var row in ReadJsonArray(file)) yield return row;
            yield break;
        }
        if (first == '{' && LooksLikeJsonLines(file))
        {
            foreach (var row in ReadJsonl(file)) yield return row;
            yield break;
        }
        var bytes = File.ReadAllBytes(file);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = StrictJson.MaxDepth }); }
        catch (JsonException e) { throw new InvalidInputException($"{file}: not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1} ({StrictJson.Reason(e)})"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidInputException($"{file}: top level is {KindName(doc.RootElement.ValueKind)}; expected an array of rows, {{\"data\": [...]}} or JSON lines");
            var root = doc.RootElement;
            var keys = root.EnumerateObject().Select(p => p.Name).ToList();
            JsonElement list = default;
            bool found = (field != null && root.TryGetProperty(field, out list) && list.ValueKind == JsonValueKind.Array)
                         || (root.TryGetProperty("data", out list) && list.ValueKind == JsonValueKind.Array);
            if (!found)
                throw new InvalidInputException($"{file}: top-level object has no \"data\" list{(field != null ? $" or \"{field}\" list" : "")}; found keys {string.Join(", ", keys)}");
            long index = 0;
            foreach (var item in list.EnumerateArray())
            {
                // Each row is parsed again from its own bytes, strictly, so that a bad row is one bad row.
                var raw = System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(item);
                long offset = OffsetIn(bytes, raw);
                index++;
                yield return ParseElement(file, index, raw.ToArray(), offset);
            }
        }
    }

    private static string KindName(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.Null => "null",
        _ => kind.ToString().ToLowerInvariant(),
    };

    private static long OffsetIn(byte[] whole, ReadOnlySpan<byte> part) =>
        System.Runtime.CompilerServices.Unsafe.ByteOffset(ref whole[0], ref System.Runtime.InteropServices.MemoryMarshal.GetReference(part));

    private static SourceRow ParseElement(string file, long index, ReadOnlyMemory<byte> bytes, long offset)
    {
        try { return new SourceRow(StrictJson.Parse(bytes, o => $"byte offset {offset + o} in the file"), file, index); }
        catch (StrictJsonException e) { return new SourceRow(null, file, index) { Error = e.Message }; }
    }

    private static IEnumerable<SourceRow> ReadJsonArray(string file)
    {
        using var elements = new JsonArrayStream(new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan), file);
        long index = 0;
        while (elements.TryNext(out var bytes, out long offset))
            yield return ParseElement(file, ++index, bytes, offset);
    }

    private static char FirstNonSpace(string file)
    {
        using var reader = new StreamReader(file, Encoding.UTF8, true);
        int c;
        while ((c = reader.Read()) >= 0) if (!char.IsWhiteSpace((char)c)) return (char)c;
        return '\0';
    }

    /// <summary>Hugging Face's json loader accepts JSON lines in a .json file: the first line is a whole object and more follow.</summary>
    private static bool LooksLikeJsonLines(string file)
    {
        using var reader = new StreamReader(file, Encoding.UTF8, true);
        string? firstLine = reader.ReadLine();
        if (firstLine == null) return false;
        try { if (JsonNode.Parse(firstLine) is not JsonObject) return false; }
        catch (JsonException) { return false; }
        while (reader.ReadLine() is { } next)
            if (next.Trim().Length > 0) return true;
        return false; // one object on one line: a {"data": [...]} document
    }

    private static IEnumerable<SourceRow> ReadParquet(string file)
    {
        using var stream = File.OpenRead(file);
        int groups;
        try
        {
            var reader = ParquetReader.CreateAsync(stream, leaveStreamOpen: true).GetAwaiter().GetResult();
            groups = reader.RowGroupCount;
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is not InvalidInputException)
        {
            throw new InvalidInputException($"{file}: not a readable parquet file ({FirstSentence(e.Message)})");
        }
        long index = 0;
        for (int g = 0; g < groups; g++)
        {
            stream.Position = 0;
            IList<Dictionary<string, object>> rows;
            try { rows = ParquetSerializer.DeserializeUntypedAsync(stream, null, g).GetAwaiter().GetResult().Data; }
            catch (Exception e) when (e is not InvalidInputException and not OutOfMemoryException)
            {
                // A damaged row group cannot be split into rows, so even --skip-bad-rows stops here.
                throw new InvalidInputException($"{file}: row group {g + 1} of {groups} (rows from {index + 1}) is not readable ({FirstSentence(e.Message)}); the parquet file is damaged: write it again");
            }
            foreach (var row in rows)
                yield return new SourceRow(ToNode(row), file, ++index);
        }
    }

    /// <summary>Parquet values (strings, numbers, lists, structs as dictionaries) as JSON nodes.</summary>
    private static JsonNode? ToNode(object? value) => value switch
    {
        null => null,
        string s => JsonValue.Create(s),
        bool b => JsonValue.Create(b),
        IDictionary<string, object?> map => new JsonObject(map.Select(p => KeyValuePair.Create(p.Key, ToNode(p.Value)))),
        byte[] bytes => JsonValue.Create(Convert.ToBase64String(bytes)),
        System.Collections.IEnumerable list => new JsonArray(list.Cast<object?>().Select(ToNode).ToArray()),
        IConvertible c when value is not DateTime => JsonValue.Create(c.ToDouble(CultureInfo.InvariantCulture)),
        _ => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)),
    };

    private static IEnumerable<SourceRow> ReadDelimited(string file, string delimiter)
    {
        // CsvHelper decodes through a StreamReader, which would turn bad bytes into U+FFFD: find them first, by line.
        var badBytes = Utf8Lines.Read(file)
            .Select(l => (l.Number, Problem: StrictJson.FirstInvalidUtf8(l.Bytes.Span) is { } bad ? $"invalid UTF-8 at byte {bad.Offset + 1} of line {l.Number} (offset {l.Offset + bad.Offset} in the file): {bad.Problem}; the text must be UTF-8"
                : l.Bytes.Span.IndexOf((byte)0) is var nul and >= 0 ? $"NUL byte at byte {nul + 1} of line {l.Number} (offset {l.Offset + nul} in the file); expected text" : null))
            .Where(l => l.Problem != null).ToDictionary(l => l.Number, l => l.Problem!);
        string? badField = null;
        using var reader = new StreamReader(file, new UTF8Encoding(false), true);
        var options = new CsvConfiguration(CultureInfo.InvariantCulture)
        {
            Delimiter = delimiter,
            MissingFieldFound = null,
            BadDataFound = args => badField ??= $"malformed field {Shorten(args.Field, 40)} (a quote inside an unquoted field, or an unclosed quote); quote fields that hold quotes as \"...\"\"...\"",
        };
        using var csv = new CsvReader(reader, options);
        string[] header;
        try
        {
            if (!csv.Read() || !csv.ReadHeader()) yield break;
            header = csv.HeaderRecord ?? [];
        }
        catch (CsvHelperException e) { throw new InvalidInputException($"{file}:1: header row is not readable CSV ({FirstSentence(e.Message)})"); }
        var repeated = header.GroupBy(h => h).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (repeated.Count > 0) throw new InvalidInputException($"{file}:1: header repeats the column name(s) {string.Join(", ", repeated)}; expected each column once");
        if (badBytes.TryGetValue(1, out var headerProblem)) throw new InvalidInputException($"{file}:1: header row has {headerProblem}");
        long lastLine = csv.Parser.RawRow;
        while (true)
        {
            bool more;
            try { more = csv.Read(); }
            catch (CsvHelperException e) { throw new InvalidInputException($"{file}:{lastLine + 1}: not readable CSV ({FirstSentence(e.Message)})"); }
            if (!more) yield break;
            // A record may span lines (a quoted field with line breaks): it owns lines lastLine+1 .. RawRow.
            long firstLine = lastLine + 1, line = csv.Parser.RawRow;
            lastLine = line;
            string? error = null;
            for (long l = firstLine; l <= line && error == null; l++)
                if (badBytes.TryGetValue(l, out var problem)) error = problem;
            int count = csv.Parser.Count;
            if (error == null && badField != null) error = badField;
            if (error == null && count != header.Length)
                error = $"{count} field(s) where the header (line 1) has {header.Length}: {string.Join(", ", header)}";
            badField = null;
            if (error != null)
            {
                yield return new SourceRow(null, file, firstLine) { Error = error };
                continue;
            }
            var row = new JsonObject();
            for (int i = 0; i < header.Length; i++) row[header[i]] = csv.Parser[i];
            yield return new SourceRow(row, file, firstLine);
        }
    }

    /// <summary>One row per non-blank line, as {"text": line}.</summary>
    private static IEnumerable<SourceRow> ReadText(string file)
    {
        var utf8 = new UTF8Encoding(false);
        foreach (var line in Utf8Lines.Read(file))
        {
            if (Utf8Lines.IsBlank(line.Bytes.Span)) continue;
            string? error = LineProblem(line, out var where);
            if (error == null && StrictJson.FirstInvalidUtf8(line.Bytes.Span) is { } bad) error = $"invalid UTF-8 at {where(bad.Offset)}: {bad.Problem}; the text must be UTF-8";
            yield return error != null
                ? new SourceRow(null, file, line.Number) { Error = error }
                : new SourceRow(new JsonObject { ["text"] = utf8.GetString(line.Bytes.Span) }, file, line.Number);
        }
    }

    internal static string Describe(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "a list",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => $"the string \"{Shorten(v.GetValue<string>(), 40)}\"",
            JsonValueKind.Number => $"the number {v.ToJsonString()}",
            _ => v.ToJsonString(),
        },
        _ => node.GetValueKind().ToString(),
    };

    internal static string Shorten(string text, int max) =>
        (text.Length <= max ? text : text[..max] + "…").Replace("\n", "\\n");

    private static string FirstSentence(string message)
    {
        int dot = message.IndexOf(". ", StringComparison.Ordinal);
        return dot > 0 ? message[..dot] : message.TrimEnd('.');
    }
}
