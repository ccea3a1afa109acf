using System.Runtime.InteropServices;

namespace SharpTune.Native;

/// <summary>
/// How glibc's malloc hands memory back. libtorch's CPU tensors come from malloc; glibc serves a block from the heap
/// (not a private mapping) once it is below M_MMAP_THRESHOLD, and by default that threshold grows to the size of
/// every mapped block freed, up to 32 MiB. After the first step a training run's activations, gradients and optimizer
/// temporaries (1–32 MiB each) therefore all land in the heap, whose freed middle pages stay resident: on the 56M
/// Llama shape (batch 2 × 512) the peak RSS was 1949 MiB for a full fine-tune and 1339 MiB for LoRA, against 1576 and
/// 1013 MiB with the threshold fixed at 64 KiB and trimming on every free (docs/performance.md). A fixed threshold
/// stops the growth. It only decides how the heap grows, so it must be set at start, before the heap fragments.
/// SHARPTUNE_HEAP_POLICY=glibc keeps glibc's behaviour; a user's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_
/// or GLIBC_TUNABLES glibc.malloc.mmap_threshold / trim_threshold (read by glibc at start) wins.
/// </summary>
public static partial class HeapPolicy
{
    public const string MmapThresholdVariable = "MALLOC_MMAP_THRESHOLD_";
    public const string TrimThresholdVariable = "MALLOC_TRIM_THRESHOLD_";
    public const string TunablesVariable = "GLIBC_TUNABLES";
    /// <summary>Set to "glibc" to keep glibc's own (growing) thresholds, e.g. to compare.</summary>
    public const string OptOutVariable = "SHARPTUNE_HEAP_POLICY";
    public const int MmapThresholdBytes = 64 * 1024;
    public const int TrimThresholdBytes = 0;

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
            return Set(MmapThresholdVariable, MMmapThreshold, MmapThresholdBytes, "mmap threshold") + ", " +
                   Set(TrimThresholdVariable, MTrimThreshold, TrimThresholdBytes, "trim threshold");
        }
        catch (EntryPointNotFoundException)
        {
            return "system default (no mallopt: not glibc)";
        }
    }

    /// <summary>
    /// Whether a 1 MiB block allocated right after a 16 MiB block was freed comes from its own mapping (bit 1,
    /// IS_MMAPPED, of glibc's size word before the block), as under this policy, rather than from the heap, as under
    /// glibc's growing threshold. Meaningful in a process whose heap has no free 1 MiB chunk yet (at start).
    /// </summary>
    public static bool MidSizeBlocksAreMapped()
    {
        Free(Malloc(16 << 20));
        nint block = Malloc(1 << 20);
        try { return (Marshal.ReadInt64(block - 8) & 2) != 0; }
        finally { Free(block); }
    }

    private static string Set(string variable, int parameter, int bytes, string what)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } chosen) return $"{what} {chosen} ({variable})";
        // GLIBC_TUNABLES=glibc.malloc.mmap_threshold=N:glibc.malloc.trim_threshold=N is glibc's newer spelling of the same.
        string tunable = "glibc.malloc." + variable["MALLOC_".Length..^1].ToLowerInvariant() + "=";
        if (Environment.GetEnvironmentVariable(TunablesVariable) is { } tunables &&
            tunables.Split(':').FirstOrDefault(t => t.StartsWith(tunable, StringComparison.Ordinal)) is { } set)
            return $"{what} {set[tunable.Length..]} ({TunablesVariable})";
        return MallOpt(parameter, bytes) == 1 ? $"{what} {bytes} B" : $"{what} glibc default (mallopt refused)";
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int parameter, int value);

    [LibraryImport("libc", EntryPoint = "malloc")]
    private static partial nint Malloc(nuint bytes);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint block);
}
