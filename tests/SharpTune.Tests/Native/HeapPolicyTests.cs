using SharpTune.Native;

namespace SharpTune.Tests.Native;

/// <summary>
/// The CLI fixes glibc's mmap threshold at start (before its heap fragments, which is why this runs the built CLI and
/// not the test host): a 1 MiB block allocated after a 16 MiB block was freed is still mapped, so its pages go back to
/// the system on free. With glibc's own growing threshold the same block comes from the heap.
/// </summary>
public sealed class HeapPolicyTests
{
    [Theory]
    [InlineData(null, "1 MiB blocks mapped (freed at once) after a 16 MiB block is freed")]
    [InlineData("glibc", "1 MiB blocks from the heap after a 16 MiB block is freed; SHARPTUNE_HEAP_POLICY=glibc")]
    public async Task The_cli_keeps_mid_size_blocks_out_of_the_heap_unless_told_not_to(string? optOut, string expected)
    {
        var environment = new Dictionary<string, string>();
        if (optOut is not null) environment[HeapPolicy.OptOutVariable] = optOut;
        await AssertMallocLine(environment, expected);
    }

    /// <summary>A user's glibc tunable wins: a fixed 32 MiB threshold serves both blocks from the heap.</summary>
    [Fact]
    public Task A_users_glibc_tunable_wins() =>
        AssertMallocLine(new Dictionary<string, string> { [HeapPolicy.TunablesVariable] = "glibc.malloc.mmap_threshold=33554432" },
            "1 MiB blocks from the heap after a 16 MiB block is freed");

    private static async Task AssertMallocLine(Dictionary<string, string> environment, string expected)
    {
        if (!OperatingSystem.IsLinux()) return;
        using var process = CliRunner.StartBuilt(["env"], environment);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, await stderr);
        var line = (await stdout).Split('\n').Single(l => l.StartsWith("malloc ", StringComparison.Ordinal));
        Assert.Equal(expected, line[15..].TrimEnd());
    }
}
