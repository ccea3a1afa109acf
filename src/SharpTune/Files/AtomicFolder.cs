namespace SharpTune.Files;

/// <summary>
/// Folders that are whole or absent: filled under a hidden temp name beside the target (every file flushed to disk),
/// then renamed into place. A fill that throws leaves no temp folder behind; a kill leaves one that
/// <see cref="RemoveStale"/> deletes on the next run.
/// </summary>
public static class AtomicFolder
{
    /// <summary>
    /// Creates <paramref name="path"/> unless it exists. False when it exists already, before or after the fill (another
    /// writer won the race): the existing folder is kept as it is and this fill is discarded.
    /// </summary>
    public static bool Create(string path, Action<string> fill)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) return false;
        var temp = Fill(full, fill);
        try
        {
            Directory.Move(temp, full);
            return true;
        }
        catch (IOException) when (Directory.Exists(full))
        {
            Directory.Delete(temp, recursive: true);
            return false;
        }
    }

    /// <summary>
    /// Creates or replaces <paramref name="path"/>. An existing folder is first renamed aside (one rename) and deleted
    /// only after the new one is in place, so at every moment the path holds the old folder, the new one, or — between
    /// the two renames — nothing, never half of one.
    /// </summary>
    public static void Replace(string path, Action<string> fill)
    {
        var full = Path.GetFullPath(path);
        var temp = Fill(full, fill);
        string? aside = Directory.Exists(full) ? MoveAside(full) : null;
        Directory.Move(temp, full);
        if (aside is not null) Directory.Delete(aside, recursive: true);
    }

    /// <summary>Deletes a folder by renaming it to a hidden name first, so a kill during the deletion leaves no half-deleted folder under its name.</summary>
    public static void Delete(string path) => Directory.Delete(MoveAside(Path.GetFullPath(path)), recursive: true);

    private static string MoveAside(string full)
    {
        var aside = TempName.Beside(full, TempName.AsideMarker);
        Directory.Move(full, aside);
        return aside;
    }

    /// <summary>
    /// Deletes the hidden temp and aside folders in <paramref name="parent"/> whose target name starts with
    /// <paramref name="targetPrefix"/> and whose writer is no longer running (a live process's, e.g. another run writing
    /// into the same folder, are left alone). Returns how many were removed.
    /// </summary>
    public static int RemoveStale(string parent, string targetPrefix)
    {
        if (!Directory.Exists(parent)) return 0;
        int removed = 0;
        foreach (var dir in Directory.GetDirectories(parent, "." + targetPrefix + "*"))
        {
            if (!TempName.TryParse(Path.GetFileName(dir), out _, out int pid)) continue;
            if (pid != Environment.ProcessId && IsAlive(pid)) continue;
            Directory.Delete(dir, recursive: true);
            removed++;
        }
        return removed;
    }

    private static string Fill(string full, Action<string> fill)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = TempName.Beside(full);
        Directory.CreateDirectory(temp);
        try
        {
            fill(temp);
            foreach (var file in Directory.EnumerateFiles(temp, "*", SearchOption.AllDirectories))
                using (var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.Read)) stream.Flush(flushToDisk: true);
            return temp;
        }
        catch
        {
            try { Directory.Delete(temp, recursive: true); } catch (IOException) { /* the original error matters more */ }
            throw;
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}
