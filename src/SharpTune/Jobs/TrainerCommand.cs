using System.Diagnostics;

namespace SharpTune.Jobs;

/// <summary>How to start `sharptune` of this very build as a child process: its apphost, or its dll under the dotnet host.</summary>
public sealed record TrainerCommand(string FileName, IReadOnlyList<string> PrefixArguments)
{
    /// <summary>The CLI beside this assembly (the CLI's own output folder, or a test folder that references the CLI project).</summary>
    public static TrainerCommand Locate()
    {
        string dir = AppContext.BaseDirectory;
        string apphost = Path.Combine(dir, "SharpTune.Cli");
        if (File.Exists(apphost) && !OperatingSystem.IsWindows()) return new TrainerCommand(apphost, []);
        if (File.Exists(apphost + ".exe")) return new TrainerCommand(apphost + ".exe", []);
        string dll = Path.Combine(dir, "SharpTune.Cli.dll");
        if (File.Exists(dll))
        {
            // DOTNET_HOST_PATH is set by the SDK (dotnet test / run); otherwise the host that runs this process, or PATH's.
            string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } h ? h
                : Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
            return new TrainerCommand(host, [dll]);
        }
        throw new InvalidInputException($"jobs: no SharpTune.Cli or SharpTune.Cli.dll in {dir}; run the service from the CLI's build output (./sharptune jobs serve)");
    }

    public ProcessStartInfo StartInfo(IEnumerable<string> arguments)
    {
        var info = new ProcessStartInfo(FileName) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var a in PrefixArguments.Concat(arguments)) info.ArgumentList.Add(a);
        return info;
    }
}
