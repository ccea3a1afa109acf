using System.Runtime.InteropServices;
using SharpTune.Native;

namespace SharpTune.Tests.Native;

public sealed class HeapPolicyTests
{
    /// <summary>
    /// glibc marks a block it served from its own mapping with bit 1 (IS_MMAPPED) of the size word before the block.
    /// Without the policy, freeing a 16 MiB mapped block raises glibc's threshold to 16 MiB and a later 1 MiB block
    /// comes from the heap (bit clear), where its pages stay resident after free; with it, the 1 MiB block is mapped
    /// and goes back to the system when freed.
    /// </summary>
    [Fact]
    public void After_a_large_block_is_freed_a_one_MiB_block_is_still_mapped()
    {
        if (!OperatingSystem.IsLinux()) return;
        string policy = HeapPolicy.Apply();
        Assert.StartsWith($"mmap threshold {HeapPolicy.MmapThresholdBytes} B", policy);
        Free(Malloc((nuint)(16 << 20)));
        nint block = Malloc((nuint)(1 << 20));
        try
        {
            long sizeWord = Marshal.ReadInt64(block - 8);
            Assert.True((sizeWord & 2) != 0, $"a 1 MiB block came from the heap (size word 0x{sizeWord:x}): {policy}");
        }
        finally { Free(block); }
    }

    [DllImport("libc", EntryPoint = "malloc")]
    private static extern nint Malloc(nuint bytes);

    [DllImport("libc", EntryPoint = "free")]
    private static extern void Free(nint block);
}
