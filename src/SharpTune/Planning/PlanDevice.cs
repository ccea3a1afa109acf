namespace SharpTune.Planning;

/// <summary>
/// A device a forecast is made for: its memory, what the runtime takes before any tensor (CUDA context and kernels on a
/// GPU; the .NET runtime, libtorch and the data pipeline in a CPU process), and the compute dtype `bf16: auto` picks.
/// </summary>
public sealed record PlanDevice(string Name, long CapacityBytes, long RuntimeBytes, bool IsGpu, bool AutoBf16)
{
    private const long GiB = 1L << 30, MiB = 1L << 20;

    /// <summary>
    /// CUDA context + cuBLAS/cuDNN workspaces of a libtorch process, as nvidia-smi shows it before the first tensor
    /// (≈ 0.5 GiB on Hopper / Ampere with libtorch 2.x).
    /// </summary>
    public const long CudaContextBytes = 512 * MiB;

    /// <summary>
    /// Resident memory of a `sharptune train` process on the CPU before the model is loaded: the .NET runtime,
    /// libtorch's CPU kernels, tokenizer and prepared data (measured 220–250 MiB with Native.HeapPolicy's fixed mmap
    /// threshold, of which ~100 MiB are mapped library pages; see docs/memory.md).
    /// </summary>
    public const long CpuRuntimeBytes = 250 * MiB;

    /// <summary>Usable memory as the drivers report it (nvidia-smi's total), not the marketing figure.</summary>
    public static readonly IReadOnlyList<PlanDevice> Gpus =
    [
        new("H100-80GB", 81559 * MiB, CudaContextBytes, true, true),
        new("H200", 143771 * MiB, CudaContextBytes, true, true),
        new("A100-40GB", 40960 * MiB, CudaContextBytes, true, true),
        new("A100-80GB", 81920 * MiB, CudaContextBytes, true, true),
        new("L4-24GB", 23034 * MiB, CudaContextBytes, true, true),
        new("RTX4090-24GB", 24564 * MiB, CudaContextBytes, true, true),
    ];

    public static IReadOnlyList<string> Names => [.. Gpus.Select(g => g.Name), "cpu"];

    /// <summary>The named device; "cpu" is this machine's MemTotal with the CPU's own bf16 preference.</summary>
    public static PlanDevice Parse(string name, bool cpuPrefersBf16)
    {
        if (string.Equals(name, "cpu", StringComparison.OrdinalIgnoreCase))
            return new("cpu", MachineMemoryBytes(), CpuRuntimeBytes, false, cpuPrefersBf16);
        return Gpus.FirstOrDefault(g => string.Equals(g.Name, name, StringComparison.OrdinalIgnoreCase))
            ?? throw new InvalidInputException($"--gpu: '{name}' is not a known device; allowed: {string.Join(", ", Names)}");
    }

    /// <summary>MemTotal from /proc/meminfo (the whole machine; other processes' use is not subtracted).</summary>
    public static long MachineMemoryBytes()
    {
        const string path = "/proc/meminfo";
        if (File.Exists(path))
            foreach (var line in File.ReadLines(path))
                if (line.StartsWith("MemTotal:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }

    public static string Format(long bytes) => bytes >= GiB ? $"{bytes / (double)GiB:F2} GiB" : $"{bytes / (double)MiB:F1} MiB";
}
