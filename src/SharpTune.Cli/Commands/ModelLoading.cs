using SharpTune.Hub;
using SharpTune.Modeling;

namespace SharpTune.Cli.Commands;

/// <summary>Model (+ optional adapter) loading shared by the inference commands.</summary>
internal static class ModelLoading
{
    public static CausalLM Load(string modelNameOrPath, string? adapterDir)
    {
        var model = ModelIO.Load(ModelLocator.Resolve(modelNameOrPath));
        if (adapterDir is not null) Peft.Lora.Apply(model, adapterDir);
        return model;
    }
}
