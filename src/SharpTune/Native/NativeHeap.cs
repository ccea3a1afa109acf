using System.Runtime.InteropServices;

namespace SharpTune.Native;

/// <summary>
/// glibc's malloc keeps heap pages that were freed (its mmap threshold rises to the largest block freed, so later
/// blocks of tens of MiB come from the heap and stay mapped). A load that reads and drops one float32 weight after
/// another — the quantized loader — would otherwise leave ~200 MiB resident for the rest of a run of a 55M model
/// (docs/memory.md). malloc_trim returns the free pages to the system.
/// </summary>
public static partial class NativeHeap
{
    /// <summary>Returns the C heap's free pages to the system where the C library can (glibc); elsewhere nothing to do.</summary>
    public static void ReleaseFreePages()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            MallocTrim(0);
        }
        catch (EntryPointNotFoundException)
        {
            // musl and other C libraries have no malloc_trim; their allocators return large blocks on free already.
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}
