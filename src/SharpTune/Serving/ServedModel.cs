using SharpTune.Hub;
using TorchSharp;
using SharpTune.Inference;
using SharpTune.Modeling;
using SharpTune.Tokenization;

namespace SharpTune.Serving;

/// <summary>Loads what serving and chatting need from a model folder: weights (+ LoRA adapter), tokenizer, generation defaults.</summary>
public static class ServedModel
{
    /// <param name="modelNameOrPath">a model folder or a repo id in the HF cache.</param>
    /// <param name="tokenizerDir">where tokenizer.json lives; default the model folder.</param>
    /// <param name="device">auto, cpu, cuda or cuda:N (see <see cref="Native.ComputeDevice"/>).</param>
    /// <param name="dtype">auto (bf16 on CUDA and AMX CPUs, else float32), float32, bfloat16 or float16; null = float32.</param>
    public static TextGenerator Load(string modelNameOrPath, string? adapterDir = null, string? tokenizerDir = null, string? device = null, string? dtype = null)
    {
        var dir = ModelLocator.Resolve(modelNameOrPath);
        var tokenizer = HfTokenizer.FromDirectory(tokenizerDir is null ? dir : ModelLocator.Resolve(tokenizerDir, null, ModelFiles.Metadata));
        var model = LoadModel(dir, adapterDir, device, dtype);
        return new TextGenerator(model, tokenizer, GenerationDefaults.Load(dir, model.Config));
    }

    /// <summary>The weights (+ LoRA adapter) of a resolved model folder, in <paramref name="dtype"/> (null = float32) on <paramref name="device"/>.</summary>
    public static CausalLM LoadModel(string dir, string? adapterDir, string? device, string? dtype)
    {
        var target = Native.ComputeDevice.Resolve(device, "--device");
        var model = ModelIO.Load(dir, dtype is null ? TorchSharp.torch.ScalarType.Float32 : Native.ComputeDevice.InferenceDType(dtype, target));
        if (adapterDir is not null) Peft.Lora.Apply(model, Directory.Exists(adapterDir) ? adapterDir : ModelLocator.Resolve(adapterDir));
        model.to(target);
        return model;
    }
}
