using System.Diagnostics;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Tests.Distributed;

/// <summary>
/// Runs the built CLI under OpenMPI's mpirun on loopback, one thread per rank. Without mpirun the test is skipped with
/// the reason, and fails under CI=true (tools/install-test-deps.sh installs OpenMPI as root).
/// </summary>
internal static class MpiRun
{
    public static string Mpirun()
    {
        var path = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);
        TestPaths.Require(path is not null, "mpirun is not installed (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev)");
        return path!;
    }

    public static ProcessStartInfo StartInfo(int ranks, IEnumerable<string> cliArgs)
    {
        var start = new ProcessStartInfo(Mpirun()) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-x", "OMP_NUM_THREADS=1", "-np", ranks.ToString(), CliRunner.BuiltExecutable }) start.ArgumentList.Add(a);
        foreach (var a in cliArgs) start.ArgumentList.Add(a);
        start.Environment["OMP_NUM_THREADS"] = "1";
        return start;
    }

    public static (int Code, string Out, string Err) Run(int ranks, params string[] cliArgs)
    {
        using var process = Process.Start(StartInfo(ranks, cliArgs))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("mpirun did not finish in 3 minutes: " + stderr.Result);
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>The built CLI in one process with one thread (the ranks' kernels, so only the reduction order differs).</summary>
    public static (int Code, string Out, string Err) Single(params string[] cliArgs)
    {
        using var process = CliRunner.StartBuilt(cliArgs, new Dictionary<string, string> { ["OMP_NUM_THREADS"] = "1" });
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("sharptune did not finish in 3 minutes: " + stderr.Result);
        }
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Largest absolute difference over every tensor of two safetensors files with the same names.</summary>
    public static double MaxAbsDiff(string fileA, string fileB)
    {
        using var a = SafeTensorsCheckpoint.Open(fileA);
        using var b = SafeTensorsCheckpoint.Open(fileB);
        Assert.Equal(a.Names.Order(), b.Names.Order());
        double worst = 0;
        foreach (var name in a.Names)
        {
            using var scope = NewDisposeScope();
            worst = Math.Max(worst, (a.Load(name).to(ScalarType.Float64) - b.Load(name).to(ScalarType.Float64)).abs().max().item<double>());
        }
        return worst;
    }
}
