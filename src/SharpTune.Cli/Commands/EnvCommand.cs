using System.CommandLine;
using SharpTune.Modeling;
using SharpTune.Native;
using static TorchSharp.torch;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune env`: what the native tensor library and the machine offer.</summary>
public static class EnvCommand
{
    private static readonly string[] InterestingCpuFlags = ["avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "fma"];

    public static Command Create(CliConsole console)
    {
        var command = new Command("env", "Print the libtorch build, device, GPUs and CPU features SharpTune sees.");
        console.Bind(command, _ =>
        {
            bool hasCuda = cuda.is_available();   // loads libtorch, so its path shows in the memory map below
            var (libtorchDir, libtorchVersion) = Libtorch();
            console.Out.WriteLine($"sharptune      {typeof(InvalidInputException).Assembly.GetName().Version}");
            console.Out.WriteLine($"torchsharp     {typeof(TorchSharp.torch).Assembly.GetName().Version}");
            console.Out.WriteLine($"libtorch       {libtorchVersion ?? "version unknown"} ({libtorchDir ?? "path unknown"}){(Environment.GetEnvironmentVariable("SHARPTUNE_LIBTORCH") is { Length: > 0 } env ? $"; SHARPTUNE_LIBTORCH={env}" : "")}");
            var auto = ComputeDevice.Resolve("auto");
            console.Out.WriteLine($"device         {ComputeDevice.Describe(auto)} (device: auto)");
            console.Out.WriteLine($"cuda           {(hasCuda ? $"available ({cuda.device_count()} device(s))" : "not available")}");
            for (int i = 0; hasCuda && i < cuda.device_count(); i++)
            {
                var memory = Nvml.MemoryOf(i);
                console.Out.WriteLine($"  cuda:{i}       {Nvml.NameOf(i) ?? "name unknown (no NVML)"}" +
                                      (memory is { } m ? $", {m.Total / (double)(1L << 30):F1} GiB ({m.Used / (double)(1L << 30):F1} GiB in use)" : ""));
            }
            string bf16Units = hasCuda ? "cuda" : CpuFeatures.HasAmxBf16() ? "cpu has AMX-BF16" : CpuFeatures.HasBf16Units() ? "cpu has AVX512-BF16 but no AMX" : "cpu lacks bf16 units";
            console.Out.WriteLine($"bf16           {bf16Units}: bf16: auto trains in {(PrecisionPolicy.PrefersBf16(auto) ? "bf16" : "fp32")}");
            console.Out.WriteLine($"threads        {get_num_threads()}");
            // Probed, not assumed: under an in-process call (tests) the policy was never applied.
            bool mapped = OperatingSystem.IsLinux() && HeapPolicy.LargeBlocksAreMapped();
            var trim = HeapPolicy.TrimPeriodMs();
            console.Out.WriteLine($"malloc         20 MiB blocks {(mapped ? "mapped" : "from the heap")} after a 16 MiB block is freed" +
                                  $"; {(trim is { } ms ? $"free heap pages returned every {ms} ms" : "no heap trimmer")}" +
                                  $"{(Environment.GetEnvironmentVariable(HeapPolicy.OptOutVariable) is { Length: > 0 } opt ? $"; {HeapPolicy.OptOutVariable}={opt}" : "")}");
            var flags = CpuFeatures.Flags();
            console.Out.WriteLine($"cpu            {CpuFeatures.ModelName() ?? "unknown"}; {string.Join(" ", InterestingCpuFlags.Select(f => flags.Contains(f) ? f : "-" + f))}");
            return 0;
        });
        return command;
    }

    /// <summary>The folder libtorch_cpu.so was loaded from (this process's memory map) and its version where it says.</summary>
    private static (string? Dir, string? Version) Libtorch()
    {
        var path = LoadedLibraries.PathOf("libtorch_cpu.so");
        if (path is null) return (null, null);
        string dir = Path.GetDirectoryName(path)!;
        // A PyTorch install: torch/lib/../version.py says `__version__ = '2.11.0+cu130'`.
        string versionPy = Path.Combine(dir, "..", "version.py");
        if (File.Exists(versionPy))
        {
            var line = File.ReadLines(versionPy).FirstOrDefault(l => l.StartsWith("__version__", StringComparison.Ordinal));
            if (line is not null) return (dir, line.Split('\'', '"')[1]);
        }
        // The NuGet package: ~/.nuget/packages/libtorch-cpu-linux-x64/2.10.0/...
        var parts = path.Split('/');
        int at = Array.FindIndex(parts, p => p.StartsWith("libtorch-", StringComparison.Ordinal));
        if (at >= 0 && at + 1 < parts.Length) return (dir, $"{parts[at + 1]} ({parts[at]})");
        // A copy in the build output: the version TorchSharp was built against.
        return (dir, $"{__version__} (TorchSharp's libtorch)");
    }
}
