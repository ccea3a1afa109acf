using SharpTune.SafeTensors;

namespace SharpTune.Training;

/// <summary>How `train` treats an output_dir that already holds a run: --resume continues it, --overwrite replaces it.</summary>
public enum StartMode { Fresh, Resume, Overwrite }

/// <summary>
/// What an output_dir holds from earlier runs, and whether a new run may start in it. A finished run (its top-level
/// model or adapter written) and an interrupted one (checkpoints, no top-level model) are never replaced without a word:
/// the user says --resume, --overwrite, or names another folder.
/// </summary>
public static class RunDirectory
{
    /// <summary>The files a finished run leaves at the top of output_dir (the model, sharded or not, or the adapter).</summary>
    public static readonly string[] FinalModelFiles = [SafeTensorsCheckpoint.SingleFileName, SafeTensorsCheckpoint.IndexFileName, SafeTensorsCheckpoint.AdapterFileName];

    /// <summary>Files and folders a run writes into output_dir, removed by --overwrite (the prepared-data cache stays: it is keyed by content).</summary>
    private static readonly string[] RunFiles = ["adapter_config.json", "metrics.jsonl", "merged", "runs", "plots"];

    public static bool HasFinalModel(string outputDir) =>
        FinalModelFiles.Any(f => File.Exists(Path.Combine(outputDir, f)));

    /// <summary>
    /// Throws (exit 2) when <paramref name="outputDir"/> holds a finished or interrupted run and the mode is
    /// <see cref="StartMode.Fresh"/>; with <see cref="StartMode.Overwrite"/> removes that run's files first. Nothing is
    /// changed on disk when it throws.
    /// </summary>
    public static void PrepareStart(string outputDir, StartMode mode, Action<string> log)
    {
        if (mode == StartMode.Resume || !Directory.Exists(outputDir)) return;
        bool finished = HasFinalModel(outputDir);
        var checkpoints = Directory.GetDirectories(outputDir, Checkpointer.Prefix + "*").Where(d => int.TryParse(Path.GetFileName(d)[Checkpointer.Prefix.Length..], out _)).ToList();
        if (!finished && checkpoints.Count == 0) return;
        if (mode == StartMode.Overwrite)
        {
            foreach (var dir in checkpoints) Directory.Delete(dir, recursive: true);
            foreach (var name in FinalModelFiles.Concat(RunFiles))
            {
                string path = Path.Combine(outputDir, name);
                if (File.Exists(path)) File.Delete(path);
                else if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            }
            foreach (var shard in Directory.GetFiles(outputDir, "model-*-of-*.safetensors")) File.Delete(shard);
            log($"--overwrite: removed the earlier run in {outputDir} ({checkpoints.Count} checkpoint(s){(finished ? ", final model" : "")})");
            return;
        }
        string what = finished
            ? $"holds a finished run ({FinalModelFiles.First(f => File.Exists(Path.Combine(outputDir, f)))})"
            : $"holds an interrupted run ({Path.GetFileName(checkpoints.OrderBy(d => int.Parse(Path.GetFileName(d)[Checkpointer.Prefix.Length..])).Last())}, no final model)";
        throw new InvalidInputException($"output_dir {outputDir} {what}; pass --resume to continue it, a new output_dir, or --overwrite to replace it");
    }
}
