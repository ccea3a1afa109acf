using System.Runtime.InteropServices;

namespace SharpTune.Native;

/// <summary>
/// How libtorch's OpenMP threads wait between parallel regions. libgomp's default spins for ~300,000 iterations before
/// sleeping; when another process holds a core, a spinning thread burns the time slice its sibling needs to reach the
/// barrier, and a full fine-tune fell to a third of its quiet speed beside one busy process (issue #21). Passive
/// waiting yields the core at once: throughput then shrinks with the CPU share, and on a quiet machine it measured no
/// slower (docs/performance.md). libgomp reads its environment once, when libtorch is loaded, so this must run before
/// the first TorchSharp call; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is.
/// </summary>
public static partial class OpenMpPolicy
{
    public const string WaitPolicyVariable = "OMP_WAIT_POLICY";
    public const string SpinCountVariable = "GOMP_SPINCOUNT";

    /// <summary>Sets OMP_WAIT_POLICY=PASSIVE in the native environment unless the user chose a wait policy. Returns the policy in force.</summary>
    public static string ApplyBeforeTorchLoads()
    {
        var chosen = Environment.GetEnvironmentVariable(WaitPolicyVariable);
        if (!string.IsNullOrEmpty(chosen) || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(SpinCountVariable)))
            return chosen ?? $"{SpinCountVariable}={Environment.GetEnvironmentVariable(SpinCountVariable)}";
        // .NET keeps its own copy of the environment on Unix: libgomp only sees what libc's setenv writes.
        if (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS())
            if (SetEnv(WaitPolicyVariable, "PASSIVE", 1) != 0)
                return "default (setenv failed)";
        Environment.SetEnvironmentVariable(WaitPolicyVariable, "PASSIVE");
        return "PASSIVE";
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);
}
