using System.Runtime.InteropServices;
using System.Text;

namespace SharpTune.Native;

/// <summary>
/// GPU name and memory through NVML (libnvidia-ml, part of the NVIDIA driver). TorchSharp exposes no CUDA memory
/// statistics, so this reports the device's used memory as the driver sees it: the caching allocator's reserve plus
/// the CUDA context. Every call returns null where no driver is installed.
/// </summary>
public static partial class Nvml
{
    private const string Library = "libnvidia-ml.so.1";

    [StructLayout(LayoutKind.Sequential)]
    private struct Memory
    {
        public ulong Total, Free, Used;
    }

    [LibraryImport(Library, EntryPoint = "nvmlInit_v2")]
    private static partial int Init();

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetHandleByIndex_v2")]
    private static partial int DeviceByIndex(uint index, out nint device);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetMemoryInfo")]
    private static partial int MemoryInfo(nint device, out Memory memory);

    [LibraryImport(Library, EntryPoint = "nvmlDeviceGetName")]
    private static partial int Name(nint device, [Out] byte[] name, uint length);

    /// <summary>(used, total) bytes of GPU <paramref name="index"/>, or null without NVML.</summary>
    public static (long Used, long Total)? MemoryOf(int index)
    {
        var device = Device(index);
        if (device is null || MemoryInfo(device.Value, out var memory) != 0) return null;
        return ((long)memory.Used, (long)memory.Total);
    }

    public static string? NameOf(int index)
    {
        var device = Device(index);
        var buffer = new byte[96];
        if (device is null || Name(device.Value, buffer, (uint)buffer.Length) != 0) return null;
        return Encoding.ASCII.GetString(buffer).TrimEnd('\0');
    }

    private static nint? Device(int index)
    {
        try
        {
            if (Init() != 0 || DeviceByIndex((uint)index, out var device) != 0) return null;
            return device;
        }
        catch (DllNotFoundException)
        {
            return null;
        }
        catch (EntryPointNotFoundException)
        {
            return null;
        }
    }
}
