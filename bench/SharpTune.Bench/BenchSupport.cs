using System.Diagnostics;
using System.Globalization;

namespace SharpTune.Bench;

/// <summary>What several benchmarks share: the repository root, memory lines of /proc, machine load, child processes.</summary>
public static class BenchSupport
{
    /// <summary>The directory holding SharpTune.sln, searched upward from the working directory and then from the binary.</summary>
    public static string RepoRoot()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "SharpTune.sln"))) return dir.FullName;
        throw new InvalidOperationException("SharpTune.sln not found above the working directory; run from inside the repository");
    }

    /// <summary>A memory line of /proc/self/status in MiB (Linux); NaN elsewhere.</summary>
    public static double ResidentMiB(string key)
    {
        const string path = "/proc/self/status";
        if (!File.Exists(path)) return double.NaN;
        var line = File.ReadLines(path).FirstOrDefault(l => l.StartsWith(key + ":", StringComparison.Ordinal));
        if (line is null) return double.NaN;
        var kb = long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        return kb / 1024.0;
    }

    /// <summary>A memory line of /proc/self/status in bytes (Linux).</summary>
    public static long StatusBytes(string key)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(key + ":", StringComparison.Ordinal)) continue;
            return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException($"/proc/self/status has no {key} line");
    }

    /// <summary>A memory line of /proc/PID/status in bytes (another process's), or null once it is gone or has no such line.</summary>
    public static long? ProcessStatusBytes(int pid, string key)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith(key + ":", StringComparison.Ordinal))
                    return long.Parse(line[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        return null;
    }

    /// <summary>JSON lines of documents of random lowercase words (the byte-level tokenizer gives about one token per character).</summary>
    public static void WriteRandomWordCorpus(string path, int characters)
    {
        var random = new Random(11);
        using var writer = new StreamWriter(path);
        for (int written = 0; written < characters;)
        {
            var words = Enumerable.Range(0, 400).Select(_ => new string(Enumerable.Range(0, random.Next(2, 9)).Select(_ => (char)('a' + random.Next(26))).ToArray()));
            var text = string.Join(' ', words);
            writer.WriteLine(new System.Text.Json.Nodes.JsonObject { ["text"] = text }.ToJsonString());
            written += text.Length;
        }
    }

    /// <summary>Writing 5 to clear_refs resets VmHWM to the current RSS (Linux ≥ 4.0), so a peak covers only what follows.</summary>
    public static void ResetPeakRss()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.WriteLine($"note: could not reset VmHWM ({e.Message}); the peak includes start-up");
        }
    }

    /// <summary>The machine's load the figures were taken under: the benches share cores with other work.</summary>
    public static string LoadLine()
    {
        var load = File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
        return $"machine: {Environment.ProcessorCount} logical cores, load average {load} (1/5/15 min)";
    }

    /// <summary>Starts this benchmark program again with the given arguments, without waiting (stdout redirected, unread).</summary>
    public static Process StartSelf(params string[] args) =>
        Process.Start(SelfStartInfo(args)) ?? throw new InvalidOperationException("child did not start");

    private static ProcessStartInfo SelfStartInfo(string[] args)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("no process path");
        var start = new ProcessStartInfo(self) { UseShellExecute = false, RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
            start.ArgumentList.Add(typeof(BenchSupport).Assembly.Location);
        foreach (var a in args) start.ArgumentList.Add(a);
        return start;
    }

    /// <summary>Runs this benchmark program again with the given arguments and returns the child's stdout lines (stderr passes through).</summary>
    public static (int ExitCode, IReadOnlyList<string> Lines) RunSelf(params string[] args)
    {
        using var child = StartSelf(args);
        var lines = new List<string>();
        while (child.StandardOutput.ReadLine() is { } line) lines.Add(line);
        child.WaitForExit();
        return (child.ExitCode, lines);
    }
}
