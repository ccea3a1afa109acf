using System.Runtime.InteropServices;

namespace SharpTune.Native;

/// <summary>
/// How glibc's malloc, which serves libtorch's CPU tensors, reuses and returns memory. A training step allocates and
/// frees gigabytes of 1–32 MiB activations, gradients and temporaries. Three ways to serve them were measured on the
/// 56M Llama shape (batch 2 × 512, docs/performance.md):
/// - glibc's default raises its mmap threshold to the size of every mapped block freed (up to 32 MiB), so the step's
///   blocks come from the heap and are reused, but freed heap pages stay resident: peak RSS full 1803 / LoRA 1383 MiB.
/// - a fixed 64 KiB threshold (this policy until now) maps every larger block and unmaps it on free: peak RSS 1380 /
///   941 MiB, but every block's pages are faulted in and zeroed by the kernel again each step — 26% of a LoRA run's
///   CPU time was in the kernel (2.8M page faults for 5 steps).
/// - this policy: the threshold fixed at glibc's largest (32 MiB), so the step's blocks are reused from the heap, and
///   every <see cref="DefaultTrimPeriodMs"/> ms a trimmer hands the heap's free pages back (malloc_trim), as jemalloc's
///   and mimalloc's time-based purging do: 1.7M page faults for the same 5 LoRA steps, 344–362 against 290–361 tokens/s
///   in alternating runs, and peak RSS within 3–8% of the 64 KiB policy (LoRA 968–1016, full 1414–1441 MiB).
/// SHARPTUNE_HEAP_POLICY=glibc keeps glibc's behaviour (no thresholds, no trimmer); SHARPTUNE_HEAP_TRIM_MS sets the
/// period (0: no trimmer); a user's own MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES
/// glibc.malloc.mmap_threshold / trim_threshold (read by glibc at start) win over the thresholds. The thresholds only
/// decide how the heap grows, so they must be set at start, before the heap fragments.
/// </summary>
public sealed partial class HeapPolicy : IDisposable
{
    public const string MmapThresholdVariable = "MALLOC_MMAP_THRESHOLD_";
    public const string TrimThresholdVariable = "MALLOC_TRIM_THRESHOLD_";
    public const string TunablesVariable = "GLIBC_TUNABLES";
    /// <summary>Set to "glibc" to keep glibc's own (growing) thresholds and no trimmer, e.g. to compare.</summary>
    public const string OptOutVariable = "SHARPTUNE_HEAP_POLICY";
    /// <summary>Milliseconds between trims of the heap's free pages; 0 turns the trimmer off.</summary>
    public const string TrimPeriodVariable = "SHARPTUNE_HEAP_TRIM_MS";
    /// <summary>glibc's largest mmap threshold on 64-bit (HEAP_MAX_SIZE / 2): larger blocks are always mapped.</summary>
    public const int MmapThresholdBytes = 32 * 1024 * 1024;
    public const int TrimThresholdBytes = 0;
    public const int DefaultTrimPeriodMs = 200;

    // glibc's mallopt parameter numbers (malloc.h).
    private const int MTrimThreshold = -1;
    private const int MMmapThreshold = -3;

    private readonly Timer? trimmer;

    private HeapPolicy(string description, int? trimPeriodMs)
    {
        Description = description;
        if (trimPeriodMs is { } period) trimmer = new Timer(_ => MallocTrim(0), null, period, period);
    }

    /// <summary>What is in force, for the start-up lines.</summary>
    public string Description { get; }

    /// <summary>Fixes glibc's mmap and trim thresholds unless the user set them and starts the trimmer; a no-op off glibc. Dispose stops the trimmer.</summary>
    public static HeapPolicy Apply()
    {
        if (!OperatingSystem.IsLinux()) return new HeapPolicy("system default", null);
        if (Environment.GetEnvironmentVariable(OptOutVariable) is "glibc") return new HeapPolicy($"glibc default ({OptOutVariable}=glibc)", null);
        try
        {
            var thresholds = Set(MmapThresholdVariable, MMmapThreshold, MmapThresholdBytes, "mmap threshold") + ", " +
                             Set(TrimThresholdVariable, MTrimThreshold, TrimThresholdBytes, "trim threshold");
            var period = TrimPeriodMs();
            return new HeapPolicy(thresholds + (period is { } ms ? $", free heap pages returned every {ms} ms" : ", no trimmer"), period);
        }
        catch (EntryPointNotFoundException)
        {
            return new HeapPolicy("system default (no mallopt: not glibc)", null);
        }
    }

    /// <summary>The trimmer's period from <see cref="TrimPeriodVariable"/> (default <see cref="DefaultTrimPeriodMs"/>); null: none.</summary>
    public static int? TrimPeriodMs()
    {
        if (Environment.GetEnvironmentVariable(OptOutVariable) is "glibc") return null;
        var text = Environment.GetEnvironmentVariable(TrimPeriodVariable);
        if (string.IsNullOrEmpty(text)) return DefaultTrimPeriodMs;
        return int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int ms)
            ? ms == 0 ? null : ms
            : throw new InvalidInputException($"{TrimPeriodVariable}={text}: expected milliseconds between heap trims (a whole number; 0 turns the trimmer off)");
    }

    /// <summary>
    /// Whether a 20 MiB block allocated right after a 16 MiB block was freed comes from its own mapping (bit 1,
    /// IS_MMAPPED, of glibc's size word before the block), as under glibc's growing threshold (raised to 16 MiB by that
    /// free), rather than from the heap, as under this policy's fixed 32 MiB. Meaningful in a process that has not yet
    /// freed a mapped block of 20 MiB or more.
    /// </summary>
    public static bool LargeBlocksAreMapped()
    {
        Free(Malloc(16 << 20));
        nint block = Malloc(20 << 20);
        try { return (Marshal.ReadInt64(block - 8) & 2) != 0; }
        finally { Free(block); }
    }

    public void Dispose() => trimmer?.Dispose();

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

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LibraryImport("libc", EntryPoint = "malloc")]
    private static partial nint Malloc(nuint bytes);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint block);
}
