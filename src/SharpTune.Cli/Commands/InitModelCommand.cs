using System.CommandLine;
using System.Text.Json.Nodes;
using SharpTune.Modeling;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune init-model`: a randomly initialised HF-format model folder from a family preset.</summary>
public static class InitModelCommand
{
    public static Command Create(CliConsole console)
    {
        var arch = new Option<string?>("--arch") { Description = "Family: " + string.Join(", ", ModelFamilies.All.Select(f => f.ModelType)) + "." };
        var configFile = new Option<string?>("--config") { Description = "A config.json to initialise instead of a preset (any supported model_type)." };
        var preset = new Option<string>("--preset") { Description = "Preset: tiny, small, or a real model shape (e.g. llama-3.2-1b).", DefaultValueFactory = _ => "tiny" };
        var output = new Option<string>("--out") { Description = "Folder to write config.json, model.safetensors, generation_config.json.", Required = true };
        var seed = new Option<long>("--seed") { Description = "Seed of the random weights.", DefaultValueFactory = _ => 0 };
        var dtype = new Option<string>("--dtype") { Description = "Weight dtype: float32, bfloat16, float16.", DefaultValueFactory = _ => "float32" };
        var command = new Command("init-model", "Write a randomly initialised model folder that transformers can load.") { arch, configFile, preset, output, seed, dtype };
        console.Bind(command, parse =>
        {
            var scalar = PrecisionPolicy.ParseDType(parse.GetValue(dtype)!, "--dtype");
            var (json, presetName) = parse.GetValue(configFile) is { } file ? (ReadConfig(file), Path.GetFileName(file)) : Preset(parse.GetValue(arch), parse.GetValue(preset)!);
            json["torch_dtype"] = PrecisionPolicy.DTypeName(scalar);
            var config = ModelFamilies.ParseConfig(json, $"preset {presetName}");
            var outDir = parse.GetValue(output)!;
            using var model = new CausalLM(config, scalar);
            RandomWeights.Initialize(model, parse.GetValue(seed));
            ModelIO.Save(model, outDir);
            long count = model.parameters().Sum(p => p.numel());
            console.Out.WriteLine($"wrote {config.ModelType} '{presetName}' ({count:N0} parameters, {PrecisionPolicy.DTypeName(scalar)}) to {outDir}");
            return 0;
        });
        return command;
    }

    private static (JsonObject Json, string Name) Preset(string? arch, string presetName)
    {
        var family = ModelFamilies.Get(arch ?? throw new InvalidInputException("init-model: give --arch (with --preset) or --config"), "--arch");
        if (!family.Presets.TryGetValue(presetName, out var presetJson))
            throw new InvalidInputException($"--preset: '{presetName}' is not a {family.ModelType} preset; available: {string.Join(", ", family.Presets.Keys)}");
        return ((JsonObject)presetJson.DeepClone(), presetName);
    }

    private static JsonObject ReadConfig(string file)
    {
        if (!File.Exists(file)) throw new InvalidInputException($"--config: {file} not found");
        try
        {
            return JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new InvalidInputException($"--config: {file} is not a JSON object");
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidInputException($"--config: {file} is not valid JSON ({e.Message})");
        }
    }
}
