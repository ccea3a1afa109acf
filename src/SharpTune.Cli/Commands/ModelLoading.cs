using SharpTune.Hub;
using System.CommandLine;
using SharpTune.Modeling;
using TorchSharp;

namespace SharpTune.Cli.Commands;

/// <summary>Model (+ optional adapter) loading shared by the inference commands.</summary>
internal static class ModelLoading
{
    public static CausalLM Load(string modelNameOrPath, string? adapterDir, string? device)
    {
        var target = Native.ComputeDevice.Resolve(device, "--device");
        var model = ModelIO.Load(ModelLocator.Resolve(modelNameOrPath));
        if (adapterDir is not null) Peft.Lora.Apply(model, adapterDir);
        model.to(target);
        return model;
    }

    public static Option<string> DeviceOption() => new("--device")
    {
        Description = "Compute device: auto (CUDA when available), cpu, cuda or cuda:N.",
        DefaultValueFactory = _ => "auto",
    };
}
