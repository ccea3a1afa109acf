using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SharpTune.Training;

namespace SharpTune.Jobs;

/// <summary>What a job's folder says about it: metrics rows, step progress, the output summary and the artifact files.</summary>
public static partial class JobOutput
{
    /// <summary>The rows of metrics.jsonl (a line being written at this moment is skipped).</summary>
    public static IReadOnlyList<JsonObject> Metrics(string jobDir)
    {
        string path = Path.Combine(jobDir, "metrics.jsonl");
        if (!File.Exists(path)) return [];
        var rows = new List<JsonObject>();
        using var reader = new StreamReader(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete));
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0) continue;
            try { if (JsonNode.Parse(line) is JsonObject row) rows.Add(row); }
            catch (System.Text.Json.JsonException) { /* the trainer is still writing this line */ }
        }
        return rows;
    }

    /// <summary>(step reached, total steps) from metrics.jsonl and the trainer's "training … for N steps" line; total 0 = not known yet.</summary>
    public static (int Step, int Total) Progress(string jobDir, IReadOnlyList<JsonObject>? metrics = null)
    {
        metrics ??= Metrics(jobDir);
        int step = metrics.Select(m => m["step"]?.GetValue<int>() ?? 0).DefaultIfEmpty(0).Max();
        int total = 0;
        string log = Path.Combine(jobDir, "train.log");
        if (File.Exists(log))
        {
            using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var head = new byte[Math.Min(stream.Length, 256 * 1024)];
            stream.ReadExactly(head);
            // The last such line wins: a resumed attempt prints it again.
            foreach (Match m in TotalSteps().Matches(System.Text.Encoding.UTF8.GetString(head))) total = int.Parse(m.Groups[1].Value);
        }
        return (step, total);
    }

    [GeneratedRegex(@"parameters for (\d+) steps")]
    private static partial Regex TotalSteps();

    /// <summary>The `output` of a finished job: output_dir, steps, final loss, the last eval metrics and the artifacts (checkpoints left out).</summary>
    public static JsonObject Summary(JobRecord job)
    {
        var metrics = Metrics(job.JobDir);
        var lastStep = metrics.LastOrDefault(m => m.ContainsKey("loss"));
        var lastEval = metrics.LastOrDefault(m => m.ContainsKey("eval_loss"));
        var eval = new JsonObject();
        if (lastEval is not null)
            foreach (var (key, value) in lastEval)
                if (key.StartsWith("eval_", StringComparison.Ordinal)) eval[key] = value?.DeepClone();
        return new JsonObject
        {
            ["output_dir"] = job.JobDir,
            ["steps"] = lastStep?["step"]?.DeepClone(),
            ["final_loss"] = lastStep?["loss"]?.DeepClone(),
            ["eval"] = lastEval is null ? null : eval,
            ["artifacts"] = new JsonArray(Artifacts(job.JobDir).Where(a => !a.Path.StartsWith(Checkpointer.Prefix, StringComparison.Ordinal))
                .Select(a => (JsonNode)a.Path).ToArray()),
        };
    }

    public sealed record Artifact(string Path, long Size, DateTimeOffset Modified);

    /// <summary>Every file under the job folder, '/'-separated relative paths, sorted; symbolic links are not followed.</summary>
    public static IReadOnlyList<Artifact> Artifacts(string jobDir)
    {
        if (!Directory.Exists(jobDir)) return [];
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.ReparsePoint, IgnoreInaccessible = true };
        return new DirectoryInfo(jobDir).EnumerateFiles("*", options)
            .Select(f => new Artifact(Path.GetRelativePath(jobDir, f.FullName).Replace(Path.DirectorySeparatorChar, '/'), f.Length, f.LastWriteTimeUtc))
            .OrderBy(a => a.Path, StringComparer.Ordinal).ToList();
    }

    /// <summary>
    /// The file a request path names, or null. Only a path that is in the listing itself resolves, so "..", absolute paths,
    /// encoded separators and symbolic links out of the folder all come back null.
    /// </summary>
    public static string? ResolveArtifact(string jobDir, string relative)
    {
        if (relative.Length == 0 || relative.Contains('\\') || relative.Contains('\0')) return null;
        var parts = relative.Split('/');
        if (parts.Any(p => p is "" or "." or "..")) return null;
        string full = Path.GetFullPath(Path.Combine(jobDir, Path.Combine(parts)));
        string root = Path.GetFullPath(jobDir) + Path.DirectorySeparatorChar;
        if (!full.StartsWith(root, StringComparison.Ordinal) || !File.Exists(full)) return null;
        // No link anywhere on the way (a link could point outside the folder).
        for (var info = new FileInfo(full) as FileSystemInfo; info.FullName.Length >= root.Length; info = Directory.GetParent(info.FullName)!)
            if (info.LinkTarget is not null) return null;
        return full;
    }
}
