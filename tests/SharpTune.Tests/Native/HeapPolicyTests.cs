using SharpTune.Native;

namespace SharpTune.Tests.Native;

public sealed class HeapPolicyTests
{
    [SkippableFact]
    public void FixesGlibcsMmapThresholdAtOneMebibyteUnlessTheUserChoseOne()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "glibc's mallopt");
        Skip.If(Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is { Length: > 0 } || Environment.GetEnvironmentVariable("GLIBC_TUNABLES") is not null,
            "the environment already chooses malloc settings");
        Assert.Equal("mmap threshold 1 MiB", HeapPolicy.Apply());
    }
}
