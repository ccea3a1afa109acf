using System.CommandLine;
using System.Text.Json.Nodes;
using SharpTune.Modeling;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune init-model`: a randomly initialised HF-format model folder from a family preset.</summary>
public static class InitModelCommand
{
    public static Command Create(CliConsole console)
    {
        var arch = new Option<string>("--arch") { Description = "Family: " + string.Join(", ", ModelFamilies.All.Select(f => f.ModelType)) + ".", Required = true };
        var preset = new Option<string>("--preset") { Description = "Preset: tiny, small, or a real model shape (e.g. llama-3.2-1b).", DefaultValueFactory = _ => "tiny" };
        var output = new Option<string>("--out") { Description = "Folder to write config.json, model.safetensors, generation_config.json.", Required = true };
        var seed = new Option<long>("--seed") { Description = "Seed of the random weights.", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "Weight dtype: float32, bfloat16, float16.", DefaultValueFactory = _ => "float32" };
        var command = new Command("init-model", "Write a randomly initialised model folder that transformers can load.") { arch, preset, output, seed, dtype };
        console.Bind(command, parse =>
        {
            var family = ModelFamilies.Get(parse.GetValue(arch)!, "--arch");
            var presetName = parse.GetValue(preset)!;
            if (!family.Presets.TryGetValue(presetName, out var presetJson))
                throw new InvalidInputException($"--preset: '{presetName}' is not a {family.ModelType} preset; available: {string.Join(", ", family.Presets.Keys)}");
            var scalar = ModelIO.ParseDType(parse.GetValue(dtype)!, "--dtype");
            var json = (JsonObject)presetJson.DeepClone();
            json["torch_dtype"] = ModelIO.DTypeName(scalar);
            var config = ModelFamilies.ParseConfig(json, $"preset {presetName}");
            var outDir = parse.GetValue(output)!;
            using var model = new CausalLM(config, scalar);
            ModelIO.InitializeRandom(model, parse.GetValue(seed));
            ModelIO.Save(model, outDir);
            long count = model.parameters().Sum(p => p.numel());
            console.Out.WriteLine($"wrote {family.ModelType} '{presetName}' ({count:N0} parameters, {ModelIO.DTypeName(scalar)}) to {outDir}");
            return 0;
        });
        return command;
    }
}
