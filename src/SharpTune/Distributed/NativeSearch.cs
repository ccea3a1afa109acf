using System.Runtime.InteropServices;
using SharpTune.Native;

namespace SharpTune.Distributed;

/// <summary>
/// Where the CUDA-side libraries of a run are looked for (NCCL, the CUDA runtime). A PyTorch install keeps them beside
/// libtorch: torch/lib itself or its site-packages/nvidia/*/lib siblings; TorchSharp's CUDA packages put them beside
/// TorchSharp's natives; a system install is on the loader path. The names are tried in that order.
/// </summary>
internal static class NativeSearch
{
    /// <summary>
    /// The candidate paths for <paramref name="fileNames"/>: <paramref name="overridePath"/> alone when given, else each
    /// name in the folders above, then the bare names (the loader path: LD_LIBRARY_PATH, ld.so.cache).
    /// </summary>
    public static IReadOnlyList<string> Candidates(IReadOnlyList<string> fileNames, string? overridePath, string? libtorchDir, string appDir)
    {
        if (!string.IsNullOrEmpty(overridePath)) return [overridePath];
        var folders = new List<string>();
        if (libtorchDir is not null)
        {
            folders.Add(libtorchDir);
            // site-packages/torch/lib → site-packages/nvidia/<package>/lib (nccl, cuda_runtime; cu13 for CUDA 13 wheels).
            var nvidia = Path.GetFullPath(Path.Combine(libtorchDir, "..", "..", "nvidia"));
            if (Directory.Exists(nvidia))
                folders.AddRange(Directory.GetDirectories(nvidia).Order(StringComparer.Ordinal).Select(d => Path.Combine(d, "lib")).Where(Directory.Exists));
        }
        folders.Add(appDir);
        folders.Add(Path.Combine(appDir, "runtimes", "linux-x64", "native"));
        var paths = folders.Distinct(StringComparer.Ordinal).SelectMany(f => fileNames.Select(n => Path.Combine(f, n))).ToList();
        paths.AddRange(fileNames);
        return paths;
    }

    /// <summary>The folder libtorch was loaded from (this process's memory map), or null before libtorch is loaded.</summary>
    public static string? LoadedLibtorchDir() =>
        LoadedLibraries.PathOf("libtorch_cuda.so", "libtorch_cpu.so") is { } path ? Path.GetDirectoryName(path) : null;

    /// <summary>The first candidate that loads, or null; bare names go through the loader, paths only when the file exists.</summary>
    public static (string Path, nint Handle)? LoadFirst(IReadOnlyList<string> candidates)
    {
        foreach (var candidate in candidates)
        {
            if (candidate.Contains('/') && !File.Exists(candidate)) continue;
            if (NativeLibrary.TryLoad(candidate, out var handle)) return (candidate, handle);
        }
        return null;
    }
}
