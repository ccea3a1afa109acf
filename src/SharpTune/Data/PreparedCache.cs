using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using SharpTune.Files;

namespace SharpTune.Data;

/// <summary>
/// Tokenized datasets on disk under dataset_prepared_path/KEY/: data.bin (little-endian: "STDATA01", kind (0 rows, 1 pairs,
/// 2 unpaired, 3 prompts: ids, then text and row JSON as length-prefixed UTF-8), then for each of train/eval ragged arrays: a count, int64 offsets and int32 values) and stats.json. Written to a temp folder and renamed, so a
/// cache folder is either complete or absent.
/// </summary>
public static class PreparedCache
{
    private const string Magic = "STDATA01";

    /// <summary>SHA-256 (hex, 16 chars) over everything the tokenized rows depend on.</summary>
    public static string Key(object settings, IEnumerable<string> files)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(settings)));
        foreach (var file in files)
        {
            var info = new FileInfo(file);
            sha.AppendData(Encoding.UTF8.GetBytes($"\n{Path.GetFullPath(file)}|{info.Length}|{info.LastWriteTimeUtc.Ticks}"));
        }
        return Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
    }

    /// <summary>SHA-256 of a file's bytes (tokenizer files: their content, not their dates, decides the tokens).</summary>
    public static string ContentHash(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexString(SHA256.HashData(stream));
    }

    public static PreparedData? TryLoad(string root, string key)
    {
        string dir = Path.Combine(root, key);
        string data = Path.Combine(dir, "data.bin"), statsFile = Path.Combine(dir, "stats.json");
        if (!File.Exists(data) || !File.Exists(statsFile)) return null;
        var stats = JsonSerializer.Deserialize<DataStats>(File.ReadAllText(statsFile))!;
        using var stream = new BufferedStream(File.OpenRead(data), 1 << 20);
        using var reader = new BinaryReader(stream);
        if (Encoding.ASCII.GetString(reader.ReadBytes(Magic.Length)) != Magic) return null;
        int kind = reader.ReadInt32();
        if (kind == 0)
        {
            var train = ReadExamples(reader);
            var eval = ReadExamples(reader);
            return new PreparedData(train, eval, [], [], stats with { FromCache = true });
        }
        if (kind == 3)
        {
            var promptTrain = ReadPrompts(reader);
            var promptEval = ReadPrompts(reader);
            return new PreparedData([], [], [], [], stats with { FromCache = true }) { PromptTrain = promptTrain, PromptEval = promptEval };
        }
        if (kind == 2)
        {
            var utrain = ReadUnpaired(reader);
            var ueval = ReadUnpaired(reader);
            return new PreparedData([], [], [], [], stats with { FromCache = true }) { UnpairedTrain = utrain, UnpairedEval = ueval };
        }
        var ptrain = ReadPairs(reader);
        var peval = ReadPairs(reader);
        return new PreparedData([], [], ptrain, peval, stats with { FromCache = true });
    }

    public static void Save(string root, string key, PreparedData prepared)
    {
        string dir = Path.Combine(root, key);
        // Another run that wrote the same key first (before or during this write) wins: its folder is kept.
        AtomicFolder.Create(dir, temp =>
        {
            using (var stream = new BufferedStream(File.Create(Path.Combine(temp, "data.bin")), 1 << 20))
            using (var writer = new BinaryWriter(stream))
            {
                writer.Write(Encoding.ASCII.GetBytes(Magic));
                bool pairs = prepared.PreferenceTrain.Count > 0 || prepared.PreferenceEval.Count > 0;
                bool unpaired = prepared.UnpairedTrain.Count > 0 || prepared.UnpairedEval.Count > 0;
                bool prompts = prepared.PromptTrain.Count > 0 || prepared.PromptEval.Count > 0;
                writer.Write(prompts ? 3 : unpaired ? 2 : pairs ? 1 : 0);
                if (prompts)
                {
                    WritePrompts(writer, prepared.PromptTrain);
                    WritePrompts(writer, prepared.PromptEval);
                }
                else if (unpaired)
                {
                    WriteUnpaired(writer, prepared.UnpairedTrain);
                    WriteUnpaired(writer, prepared.UnpairedEval);
                }
                else if (pairs)
                {
                    WritePairs(writer, prepared.PreferenceTrain);
                    WritePairs(writer, prepared.PreferenceEval);
                }
                else
                {
                    WriteExamples(writer, prepared.Train);
                    WriteExamples(writer, prepared.Eval);
                }
            }
            File.WriteAllText(Path.Combine(temp, "stats.json"), JsonSerializer.Serialize(prepared.Stats with { FromCache = false }));
        });
    }

    private static void WriteExamples(BinaryWriter w, IReadOnlyList<TokenizedExample> rows)
    {
        WriteRagged(w, rows.Select(r => r.InputIds).ToList());
        WriteRagged(w, rows.Select(r => r.Labels).ToList());
    }

    private static List<TokenizedExample> ReadExamples(BinaryReader r)
    {
        var ids = ReadRagged(r);
        var labels = ReadRagged(r);
        return ids.Select((x, i) => new TokenizedExample(x, labels[i])).ToList();
    }

    private static void WritePairs(BinaryWriter w, IReadOnlyList<PreferenceExample> rows)
    {
        WriteRagged(w, rows.Select(r => r.PromptIds).ToList());
        WriteRagged(w, rows.Select(r => r.ChosenIds).ToList());
        WriteRagged(w, rows.Select(r => r.RejectedIds).ToList());
    }

    private static List<PreferenceExample> ReadPairs(BinaryReader r)
    {
        var prompt = ReadRagged(r);
        var chosen = ReadRagged(r);
        var rejected = ReadRagged(r);
        return prompt.Select((p, i) => new PreferenceExample(p, chosen[i], rejected[i])).ToList();
    }

    private static void WriteUnpaired(BinaryWriter w, IReadOnlyList<UnpairedExample> rows)
    {
        WriteRagged(w, rows.Select(r => r.PromptIds).ToList());
        WriteRagged(w, rows.Select(r => r.CompletionIds).ToList());
        WriteRagged(w, [rows.Select(r => r.Desirable ? 1 : 0).ToArray()]);
    }

    private static List<UnpairedExample> ReadUnpaired(BinaryReader r)
    {
        var prompt = ReadRagged(r);
        var completion = ReadRagged(r);
        var desirable = ReadRagged(r)[0];
        return prompt.Select((p, i) => new UnpairedExample(p, completion[i], desirable[i] == 1)).ToList();
    }

    private static void WritePrompts(BinaryWriter w, IReadOnlyList<PromptExample> rows)
    {
        WriteRagged(w, rows.Select(r => r.PromptIds).ToList());
        foreach (var r in rows)
        {
            w.Write(r.PromptText);
            w.Write(r.RowJson);
        }
    }

    private static List<PromptExample> ReadPrompts(BinaryReader r)
    {
        var ids = ReadRagged(r);
        return ids.Select(p => new PromptExample(p, r.ReadString(), r.ReadString())).ToList();
    }

    private static void WriteRagged(BinaryWriter w, IReadOnlyList<int[]> rows)
    {
        w.Write((long)rows.Count);
        long offset = 0;
        w.Write(offset);
        foreach (var row in rows) w.Write(offset += row.Length);
        foreach (var row in rows) w.Write(MemoryMarshal.AsBytes(row.AsSpan()));
    }

    private static int[][] ReadRagged(BinaryReader r)
    {
        long count = r.ReadInt64();
        var offsets = new long[count + 1];
        r.BaseStream.ReadExactly(MemoryMarshal.AsBytes(offsets.AsSpan()));
        var rows = new int[count][];
        for (long i = 0; i < count; i++)
        {
            rows[i] = new int[offsets[i + 1] - offsets[i]];
            r.BaseStream.ReadExactly(MemoryMarshal.AsBytes(rows[i].AsSpan()));
        }
        return rows;
    }
}
