using SharpTune.Hub;
using System.CommandLine;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Peft;

namespace SharpTune.Cli.Commands;

/// <summary>The inference commands' --model / --adapter / --tokenizer / --device / --dtype, turned into a call of the one model loader.</summary>
internal static class ModelLoading
{
    /// <summary>The weights (+ adapter) of a model folder or a repo id in the HF cache.</summary>
    /// <param name="dtype">null keeps float32 (score's contract); otherwise auto, float32, bfloat16 or float16.</param>
    public static CausalLM Model(string modelNameOrPath, string? adapter, string? device, string? dtype = null) =>
        ModelLoader.Load(ModelLocator.Resolve(modelNameOrPath), Options(adapter, device, dtype));

    /// <summary>Weights (+ adapter), tokenizer (default: the model's) and generation defaults, for generate, chat, serve and eval.</summary>
    public static TextGenerator Generator(string modelNameOrPath, string? adapter, string? tokenizer, string? device, string? dtype = null) =>
        TextGenerator.Load(ModelLocator.Resolve(modelNameOrPath), Options(adapter, device, dtype),
            tokenizer is null ? null : ModelLocator.Resolve(tokenizer, null, ModelFiles.Metadata));

    /// <summary>An adapter folder, or a repo id in the HF cache.</summary>
    public static SavedLoraAdapter Adapter(string adapter) =>
        SavedLoraAdapter.Open(Directory.Exists(adapter) ? adapter : ModelLocator.Resolve(adapter));

    private static ModelLoadOptions Options(string? adapter, string? device, string? dtype)
    {
        var target = Native.ComputeDevice.Resolve(device, "--device");
        return new ModelLoadOptions
        {
            Device = target,
            DType = dtype is null ? TorchSharp.torch.ScalarType.Float32 : PrecisionPolicy.InferenceDType(dtype, target),
            Adapter = adapter is null ? null : Adapter(adapter),
        };
    }

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
