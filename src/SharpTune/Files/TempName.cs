namespace SharpTune.Files;

/// <summary>
/// The one name of a write in progress: hidden, beside its target, with a random part (so two writers of one process
/// never share one) and ending in the writer's process id (so a later run tells a killed writer's leftovers from a live
/// one's): <c>.NAME.tmp-RANDOM-PID</c>, and <c>.NAME.old-RANDOM-PID</c> for a folder renamed aside to be deleted.
/// </summary>
public static class TempName
{
    public const string WriteMarker = ".tmp-";
    public const string AsideMarker = ".old-";

    /// <summary>A fresh hidden name beside <paramref name="path"/> (a full path).</summary>
    public static string Beside(string path, string marker = WriteMarker) =>
        Path.Combine(Path.GetDirectoryName(path)!, $".{Path.GetFileName(path)}{marker}{Guid.NewGuid():N}-{Environment.ProcessId}");

    /// <summary>
    /// For a hidden temp or aside name (with or without the random part): the target's name and the writing process.
    /// False for any other name.
    /// </summary>
    public static bool TryParse(string name, out string target, out int processId)
    {
        target = "";
        processId = 0;
        if (!name.StartsWith('.')) return false;
        int marker = Math.Max(name.LastIndexOf(WriteMarker, StringComparison.Ordinal), name.LastIndexOf(AsideMarker, StringComparison.Ordinal));
        if (marker <= 1) return false;
        var tag = name[(marker + WriteMarker.Length)..];
        if (!int.TryParse(tag[(tag.LastIndexOf('-') + 1)..], System.Globalization.NumberStyles.None, null, out processId)) return false;
        target = name[1..marker];
        return true;
    }
}
