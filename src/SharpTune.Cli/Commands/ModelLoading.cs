using SharpTune.Hub;
using System.CommandLine;
using SharpTune.Modeling;

namespace SharpTune.Cli.Commands;

/// <summary>Model (+ optional adapter) loading shared by the inference commands.</summary>
internal static class ModelLoading
{
    /// <param name="dtype">null keeps float32 (score's contract); otherwise auto, float32, bfloat16 or float16.</param>
    public static CausalLM Load(string modelNameOrPath, string? adapterDir, string? device, string? dtype = null) =>
        Serving.ServedModel.LoadModel(ModelLocator.Resolve(modelNameOrPath), adapterDir, device, dtype);

    public static Option<string> DTypeOption() => new("--dtype")
    {
        Description = "Weights and compute dtype: auto (bf16 on CUDA and AMX CPUs, else float32), float32, bfloat16 or float16.",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<string> DeviceOption() => new("--device")
    {
        Description = "Compute device: auto (CUDA when available), cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "auto",
    };
}
