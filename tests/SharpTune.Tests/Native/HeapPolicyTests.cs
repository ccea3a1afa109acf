using SharpTune.Native;

namespace SharpTune.Tests.Native;

/// <summary>
/// The CLI fixes glibc's mmap threshold at its largest (32 MiB) at start (before its heap fragments, which is why this
/// runs the built CLI and not the test host) and trims the heap's free pages periodically: a 20 MiB block allocated after
/// a 16 MiB block was freed comes from the heap. Under glibc's own growing threshold (raised to 16 MiB by that free)
/// the same block is mapped.
/// </summary>
public sealed class HeapPolicyTests
{
    [Theory]
    [InlineData(null, "20 MiB blocks from the heap after a 16 MiB block is freed; free heap pages returned every 200 ms")]
    [InlineData("glibc", "20 MiB blocks mapped after a 16 MiB block is freed; no heap trimmer; SHARPTUNE_HEAP_POLICY=glibc")]
    public async Task The_cli_serves_blocks_up_to_32_MiB_from_a_trimmed_heap_unless_told_not_to(string? optOut, string expected)
    {
        var environment = new Dictionary<string, string>();
        if (optOut is not null) environment[HeapPolicy.OptOutVariable] = optOut;
        await AssertMallocLine(environment, expected);
    }

    /// <summary>A user's glibc tunable wins: a fixed 1 MiB threshold maps the 20 MiB block.</summary>
    [Fact]
    public Task A_users_glibc_tunable_wins() =>
        AssertMallocLine(new Dictionary<string, string> { [HeapPolicy.TunablesVariable] = "glibc.malloc.mmap_threshold=1048576" },
            "20 MiB blocks mapped after a 16 MiB block is freed; free heap pages returned every 200 ms");

    [Fact]
    public Task The_trim_period_is_the_users_to_set() =>
        AssertMallocLine(new Dictionary<string, string> { [HeapPolicy.TrimPeriodVariable] = "0" },
            "20 MiB blocks from the heap after a 16 MiB block is freed; no heap trimmer");

    [Fact]
    public async Task A_trim_period_that_is_not_a_number_is_refused_at_start()
    {
        if (!OperatingSystem.IsLinux()) return;
        using var process = CliRunner.StartBuilt(["env"], new Dictionary<string, string> { [HeapPolicy.TrimPeriodVariable] = "fast" });
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        Assert.Equal(2, process.ExitCode);
        Assert.Contains("SHARPTUNE_HEAP_TRIM_MS=fast", await stderr);
    }

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
