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
    public static TextGenerator Load(string modelNameOrPath, string? adapterDir = null, string? tokenizerDir = null, string? device = null)
    {
        var target = Native.ComputeDevice.Resolve(device, "--device");
        var dir = ModelLocator.Resolve(modelNameOrPath);
        var tokenizer = HfTokenizer.FromDirectory(tokenizerDir ?? dir);
        var model = ModelIO.Load(dir);
        if (adapterDir is not null) Peft.Lora.Apply(model, adapterDir);
        model.to(target);
        return new TextGenerator(model, tokenizer, GenerationDefaults.Load(dir, model.Config));
    }
}
