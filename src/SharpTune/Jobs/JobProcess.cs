using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace SharpTune.Jobs;

/// <summary>
/// One `sharptune train CONFIG [--resume]` child: its stdout and stderr go line by line to the job's train.log (the token,
/// should anything print it, masked). A crash or OOM kill of the child ends only this job. Stopping is SIGTERM first — the
/// trainer saves a checkpoint and exits — then a kill after the grace period.
/// </summary>
public sealed partial class JobProcess : IDisposable
{
    private readonly Process process;
    private readonly StreamWriter log;
    private readonly Lock logGate = new();
    private readonly string? secret;
    private readonly TaskCompletionSource<int> exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The last "error: …" line the child printed: the job's error message when it fails.</summary>
    public string? LastError { get; private set; }
    public int Pid => process.Id;
    /// <summary>SIGTERM was sent: the trainer checkpoints and exits (143), or finishes first (0) when it was at its last step.</summary>
    public bool Interrupted { get; private set; }
    public Task<int> Exited => exited.Task;

    private JobProcess(Process process, StreamWriter log, string? secret)
    {
        this.process = process;
        this.log = log;
        this.secret = secret;
    }

    public static JobProcess Start(TrainerCommand command, JobRecord job, bool resume, string? hfToken)
    {
        var arguments = new List<string> { "train", job.ConfigPath };
        if (resume) arguments.Add("--resume");
        var info = command.StartInfo(arguments);
        info.WorkingDirectory = job.JobDir;
        // Only this job's own token reaches the child; none is written anywhere.
        info.Environment.Remove("HF_TOKEN");
        if (hfToken is not null) info.Environment["HF_TOKEN"] = hfToken;
        info.Environment.Remove("SHARPTUNE_API_KEY");
        var log = new StreamWriter(new FileStream(job.LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite), new UTF8Encoding(false));
        log.WriteLine($"[jobs] {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss}Z attempt {job.Attempts}: sharptune {string.Join(' ', arguments)}");
        log.Flush();
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new JobProcess(process, log, hfToken);
        process.OutputDataReceived += (_, e) => child.Line(e.Data, isError: false);
        process.ErrorDataReceived += (_, e) => child.Line(e.Data, isError: true);
        try
        {
            process.Start();
        }
        catch
        {
            log.Dispose();
            process.Dispose();
            throw;
        }
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _ = child.Finish();
        return child;
    }

    private void Line(string? text, bool isError)
    {
        if (text is null) return;   // end of that pipe
        if (secret is not null) text = text.Replace(secret, "***");
        if (isError && text.StartsWith("error: ", StringComparison.Ordinal)) LastError = text["error: ".Length..];
        lock (logGate)
        {
            log.WriteLine(text);
            log.Flush();
        }
    }

    /// <summary>Waits (asynchronously: a blocking wait inside an output callback would deadlock) for the exit and both pipes' end.</summary>
    private async Task Finish()
    {
        await process.WaitForExitAsync();
        int code = process.ExitCode;
        lock (logGate)
        {
            log.WriteLine($"[jobs] {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm:ss}Z exit code {code}");
            log.Flush();
        }
        exited.TrySetResult(code);
    }

    /// <summary>
    /// Asks the trainer to checkpoint and stop with SIGTERM, what schedulers send. Not SIGINT: a service started in the
    /// background (nohup, a non-interactive shell) passes SIGINT on ignored, and .NET then never sees it.
    /// </summary>
    public void Interrupt()
    {
        Interrupted = true;
        if (!OperatingSystem.IsWindows() && !process.HasExited) _ = SendSignal(process.Id, SigTerm);
    }

    public void Kill()
    {
        try { process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { /* already gone */ }
    }

    public void Dispose()
    {
        process.Dispose();
        lock (logGate) log.Dispose();
    }

    private const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendSignal(int pid, int signal);

    /// <summary>Kills a `sharptune train` of <paramref name="configPath"/> left running by a killed server (checked via /proc so an unrelated process that reused the pid is spared).</summary>
    public static bool KillOrphan(int pid, string configPath)
    {
        string cmdline = $"/proc/{pid}/cmdline";
        try
        {
            if (!File.Exists(cmdline) || !File.ReadAllText(cmdline).Split('\0').Contains(configPath)) return false;
            using var orphan = Process.GetProcessById(pid);
            orphan.Kill(entireProcessTree: true);
            orphan.WaitForExit(10_000);
            return true;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
