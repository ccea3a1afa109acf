using System.Runtime.InteropServices;

namespace SharpTune.Native;

/// <summary>
/// How glibc's malloc hands memory back. libtorch's CPU tensors come from malloc; glibc serves a block from the heap
/// (not a private mapping) once it is below M_MMAP_THRESHOLD, and by default that threshold grows to the size of
/// every mapped block freed, up to 32 MiB. After the first step a training run's activations, gradients and optimizer
/// temporaries (1–32 MiB each) therefore all land in the heap, whose freed middle pages stay resident: on the 56M
/// Llama shape (batch 2 × 512) the peak RSS was 1949 MiB for a full fine-tune and 1339 MiB for LoRA, against 1576 and
/// 1013 MiB with the threshold fixed at 64 KiB and trimming on every free (docs/performance.md). A fixed threshold
/// stops the growth. SHARPTUNE_HEAP_POLICY=glibc keeps glibc's behaviour; a user's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ (read by glibc at start) wins.
/// </summary>
public static partial class HeapPolicy
{
    public const string MmapThresholdVariable = "MALLOC_MMAP_THRESHOLD_";
    public const string TrimThresholdVariable = "MALLOC_TRIM_THRESHOLD_";
    public const int MmapThresholdBytes = 64 * 1024;
    public const int TrimThresholdBytes = 0;
    /// <summary>Set to "glibc" to keep glibc's own (growing) thresholds, e.g. to compare.</summary>
    public const string OptOutVariable = "SHARPTUNE_HEAP_POLICY";

    // glibc's mallopt parameter numbers (malloc.h).
    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;

    /// <summary>Fixes glibc's mmap and trim thresholds unless the user set them; says what is in force. A no-op off glibc.</summary>
    public static string Apply()
    {
        if (!OperatingSystem.IsLinux()) return "system default";
        if (Environment.GetEnvironmentVariable(OptOutVariable) is "glibc") return $"glibc default ({OptOutVariable}=glibc)";
        try
        {
            var parts = new List<string>();
            parts.Add(Set(MmapThresholdVariable, MMmapThreshold, MmapThresholdBytes, "mmap threshold"));
            parts.Add(Set(TrimThresholdVariable, MTrimThreshold, TrimThresholdBytes, "trim threshold"));
            return string.Join(", ", parts);
        }
        catch (EntryPointNotFoundException)
        {
            return "system default (no mallopt: not glibc)";
        }
    }

    private static string Set(string variable, int parameter, int bytes, string what)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } chosen) return $"{what} {chosen} ({variable})";
        return MallOpt(parameter, bytes) == 1 ? $"{what} {bytes} B" : $"{what} glibc default (mallopt refused)";
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);
}
