using System.Diagnostics;

namespace SharpTune.Tests;

/// <summary>Runs the `sharptune` CLI in-process, or as the built executable, and captures its exit code and output.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = SharpTune.Cli.Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>
    /// The CLI's own build output (src/SharpTune.Cli/bin/CONFIG/net10.0/SharpTune.Cli), built with the test project. Run
    /// as a child process it has the configuration the CLI ships with (InvariantGlobalization, its runtimeconfig.json),
    /// which an in-process call from the test host does not.
    /// </summary>
    public static string BuiltExecutable
    {
        get
        {
            // tests/SharpTune.Tests/bin/<Configuration>/<tfm>/ → the same configuration and framework of the CLI project.
            var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
            var path = Path.Combine(TestPaths.RepoRoot, "src", "SharpTune.Cli", "bin", tfmDir.Parent!.Name, tfmDir.Name, "SharpTune.Cli");
            return File.Exists(path) ? path : throw new FileNotFoundException("the CLI is not built at " + path, path);
        }
    }

    /// <summary>Starts the built CLI as a child process; the caller reads, signals or waits for it.</summary>
    public static Process StartBuilt(IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment = null, bool redirectInput = false)
    {
        var start = new ProcessStartInfo(BuiltExecutable)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = redirectInput, UseShellExecute = false,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        return Process.Start(start) ?? throw new InvalidOperationException("could not start " + start.FileName);
    }

    /// <summary>Runs the built CLI to completion (at most <paramref name="timeout"/>, default 2 minutes).</summary>
    public static (int Code, string Out, string Err) RunBuilt(IEnumerable<string> args, TimeSpan? timeout = null)
    {
        using var process = StartBuilt(args);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"sharptune {string.Join(' ', args)} did not finish in time");
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
