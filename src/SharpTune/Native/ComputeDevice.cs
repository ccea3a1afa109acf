using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Native;

/// <summary>`device: auto | cpu | cuda | cuda:N` (config key and --device) → the libtorch device, checked against what this libtorch can reach.</summary>
public static class ComputeDevice
{
    public static Device Resolve(string? spec, string key = "device")
    {
        string value = (spec ?? "auto").Trim().ToLowerInvariant();
        if (value is "auto" or "") return cuda.is_available() ? CUDA : CPU;
        if (value == "cpu") return CPU;
        if (value == "cuda" || value.StartsWith("cuda:", StringComparison.Ordinal))
        {
            int index = 0;
            if (value.Length > 4 && (!int.TryParse(value[5..], out index) || index < 0))
                throw new InvalidInputException($"{key}: '{spec}' is not a device; allowed: auto, cpu, cuda, cuda:N (N = 0, 1, ...)");
            if (!cuda.is_available())
                throw new InvalidInputException($"{key}: {spec} requested but CUDA is not available to this libtorch (the CPU build is loaded); " +
                                                "point SHARPTUNE_LIBTORCH at a CUDA libtorch (see docs/gpu.md) or use device: cpu");
            int count = cuda.device_count();
            if (index >= count)
                throw new InvalidInputException($"{key}: {spec} requested but this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1})");
            return new Device(DeviceType.CUDA, index);
        }
        throw new InvalidInputException($"{key}: '{spec}' is not a device; allowed: auto, cpu, cuda, cuda:N (N = 0, 1, ...)");
    }

    public static string Describe(Device device) => device.type == DeviceType.CUDA ? $"cuda:{device.index}" : "cpu";
}
