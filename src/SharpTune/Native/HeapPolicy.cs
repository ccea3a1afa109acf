using System.Runtime.InteropServices;

namespace SharpTune.Native;

/// <summary>
/// glibc's malloc serves a block from the heap once a freed mmapped block of that size raised its dynamic mmap
/// threshold (up to 32 MiB): after the first step nearly every activation, gradient and temporary of a training step
/// lives in the heap, and freed heap pages stay resident while the next step maps fresh ones. A LoRA/QLoRA run's second
/// step then peaked ~250–330 MiB above its first on a 54M model (docs/memory.md). A fixed threshold of 1 MiB (which
/// also turns the dynamic adjustment off) returns every larger block to the system when it is freed, so the peak is
/// what is live. A user's own MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES is left as it is.
/// </summary>
public static partial class HeapPolicy
{
    public const int MmapThresholdBytes = 1 << 20;
    private const int MmapThresholdParameter = -3;   // M_MMAP_THRESHOLD in glibc's malloc.h

    /// <summary>Sets glibc's mmap threshold unless the user chose malloc settings. Returns what is in force.</summary>
    public static string Apply()
    {
        if (!OperatingSystem.IsLinux()) return "system default (not Linux)";
        if (Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is { Length: > 0 } threshold) return $"MALLOC_MMAP_THRESHOLD_={threshold}";
        if (Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is { } tunables && tunables.Contains("malloc", StringComparison.Ordinal)) return $"GLIBC_TUNABLES={tunables}";
        try
        {
            return MallOpt(MmapThresholdParameter, MmapThresholdBytes) == 1 ? $"mmap threshold {MmapThresholdBytes >> 20} MiB" : "system default (mallopt refused)";
        }
        catch (EntryPointNotFoundException)
        {
            return "system default (not glibc)";
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);
}
