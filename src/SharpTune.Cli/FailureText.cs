using System.Text.RegularExpressions;

namespace SharpTune.Cli;

/// <summary>
/// One line, in words, for a failure that is not the user's input: what happened, to which file (the user's name for it,
/// not a temporary file's), and what to do.
/// </summary>
public static partial class FailureText
{
    /// <summary>The failure inside wrappers that add nothing (a task's AggregateException, a reflection call's TargetInvocationException).</summary>
    public static Exception Unwrap(Exception e)
    {
        while (true)
        {
            if (e is AggregateException { InnerExceptions.Count: 1 } aggregate) e = aggregate.InnerExceptions[0];
            else if (e is System.Reflection.TargetInvocationException { InnerException: { } inner }) e = inner;
            else return e;
        }
    }

    public static string Describe(Exception e)
    {
        string message = e.Message;
        string? path = PathOf(message);
        string where = path is null ? "" : $" writing {UserPath(path)}";
        if (e is OutOfMemoryException || OutOfMemory().IsMatch(message))
            return "out of memory: lower micro_batch_size or sequence_len, turn on gradient_checkpointing, or use an adapter (adapter: lora); sharptune plan CONFIG forecasts the peak";
        if (e is IOException && DiskFull().IsMatch(message))
            return $"disk full{where}: free space on that disk or point output_dir at another one; checkpoints already saved are intact";
        if (e is IOException or UnauthorizedAccessException && ReadOnly().IsMatch(message))
            return $"read-only file system{where}: point output_dir at a writable folder";
        // A read-only mount reports some calls (deleting a folder, opening for write) only as "access denied".
        if (e is IOException or UnauthorizedAccessException && path is not null && AccessDenied().IsMatch(message) && IsOnReadOnlyMount(path, MountTable()))
            return $"read-only file system{where}: point output_dir at a writable folder";
        if (e is UnauthorizedAccessException || (e is IOException && AccessDenied().IsMatch(message)))
            return $"permission denied{where}: make the folder writable for this user or point output_dir at another one";
        if (e is IOException)
            return $"input/output failure{where}: {Strip(message)}; check the disk";
        return $"{Strip(message)} (an unexpected failure; rerun with --debug or SHARPTUNE_DEBUG=1 for the stack trace, and report it)";
    }

    /// <summary>
    /// Whether <paramref name="path"/> lies on a file system mounted read-only, by the mount table's format (/proc/self/mounts:
    /// device, mount point with octal escapes, type, options): the longest mount point that contains the path decides.
    /// </summary>
    public static bool IsOnReadOnlyMount(string path, string mountTable)
    {
        string full = Path.GetFullPath(path);
        string? options = null;
        int best = -1;
        foreach (var line in mountTable.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split(' ');
            if (fields.Length < 4) continue;
            string mountPoint = OctalEscape().Replace(fields[1], m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString());
            bool contains = mountPoint == "/" || full == mountPoint || full.StartsWith(mountPoint.TrimEnd('/') + "/", StringComparison.Ordinal);
            if (contains && mountPoint.Length >= best) (best, options) = (mountPoint.Length, fields[3]);
        }
        return options is not null && options.Split(',').Contains("ro");
    }

    private static string MountTable()
    {
        try
        {
            return File.Exists("/proc/self/mounts") ? File.ReadAllText("/proc/self/mounts") : "";
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>The path .NET quotes in an IO message ('…' or : '…').</summary>
    private static string? PathOf(string message) => QuotedPath().Match(message) is { Success: true } m ? m.Groups[1].Value : null;

    /// <summary>A save in progress writes into hidden temporary names; the user knows the folder it becomes.</summary>
    public static string UserPath(string path)
    {
        var checkpoint = TempCheckpoint().Match(path);
        if (checkpoint.Success) return Path.Combine(checkpoint.Groups[1].Value, "checkpoint-" + checkpoint.Groups[2].Value);
        var temp = TempFile().Match(path);
        return temp.Success ? Path.Combine(temp.Groups[1].Value, temp.Groups[2].Value) : path;
    }

    /// <summary>The message with temporary paths replaced by the user's names and type names of .NET left out.</summary>
    private static string Strip(string message) =>
        string.Join(' ', QuotedPath().Replace(message, m => $"'{UserPath(m.Groups[1].Value)}'")
            .Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    [GeneratedRegex(@"out of memory|can't allocate memory|std::bad_alloc|CUDA error: out of memory", RegexOptions.IgnoreCase)]
    private static partial Regex OutOfMemory();
    [GeneratedRegex(@"No space left on device|disk full|There is not enough space on the disk", RegexOptions.IgnoreCase)]
    private static partial Regex DiskFull();
    [GeneratedRegex(@"Read-only file system", RegexOptions.IgnoreCase)]
    private static partial Regex ReadOnly();
    [GeneratedRegex(@"Access to the path .* is denied", RegexOptions.IgnoreCase)]
    private static partial Regex AccessDenied();
    [GeneratedRegex(@"\\([0-7]{3})")]
    private static partial Regex OctalEscape();
    [GeneratedRegex(@"'(/[^']+)'")]
    private static partial Regex QuotedPath();
    [GeneratedRegex(@"^(.*)/\.checkpoint-(\d+)\.(?:tmp|old)-(?:[0-9a-f]{32}-)?\d+(?:/.*)?$")]
    private static partial Regex TempCheckpoint();
    [GeneratedRegex(@"^(.*)/\.?([^/]+?)(?:\.[0-9a-f]{32}\.tmp|\.tmp-(?:[0-9a-f]{32}-)?\d+)$")]
    private static partial Regex TempFile();
}
