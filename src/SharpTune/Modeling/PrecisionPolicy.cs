using SharpTune.Native;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>Which dtype weights and compute use: what `auto` means on a device, and the dtype names of config.json and the CLI.</summary>
public static class PrecisionPolicy
{
    /// <summary>
    /// What `auto` precision means, for training (`bf16: auto`) and inference (`--dtype auto`) alike: bf16 on CUDA and on
    /// CPUs with AMX-BF16 (measured ≈5× faster there; elsewhere bf16 matmul ranged down to ~100× slower than fp32).
    /// </summary>
    public static bool PrefersBf16(Device device) => device.type == DeviceType.CUDA || CpuFeatures.HasAmxBf16();

    /// <summary>The dtype to run inference in: `auto` (<see cref="PrefersBf16"/>, else float32), or float32 / bfloat16 / float16 by name.</summary>
    public static ScalarType InferenceDType(string? spec, Device device, string key = "--dtype") =>
        (spec ?? "auto").Trim().ToLowerInvariant() is "auto" or ""
            ? PrefersBf16(device) ? ScalarType.BFloat16 : ScalarType.Float32
            : ParseDType(spec!.Trim().ToLowerInvariant(), key);

    public static ScalarType ParseDType(string name, string key) => name switch
    {
        "float32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" => ScalarType.Float16,
        _ => throw new InvalidInputException($"{key}: '{name}' is not a dtype; allowed: float32, bfloat16, float16"),
    };

    /// <summary>The torch_dtype name config.json gives saved weights.</summary>
    public static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => throw new InvalidInputException($"dtype {dtype} cannot be saved as model weights; allowed: float32, bfloat16, float16"),
    };
}
