using System.CommandLine;
using SharpTune.Hub;
using SharpTune.Modeling;
using SharpTune.Peft;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune merge`: fold a LoRA/DoRA adapter into its base and write a plain HF model folder.</summary>
public static class MergeCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model") { Description = "Base model folder or a repo id in the HF cache.", Required = true };
        var adapter = new Option<string>("--adapter") { Description = "PEFT adapter folder (adapter_config.json + adapter_model.safetensors).", Required = true };
        var output = new Option<string>("--out") { Description = "Folder for the merged model.", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Weight dtype of the merged model: float32, bfloat16, float16.", DefaultValueFactory = _ => "float32" };
        var command = new Command("merge", "Merge a LoRA adapter into its base model (merge_and_unload) and save it.") { model, adapter, output, dtype };
        console.Bind(command, parse =>
        {
            var modelDir = ModelLocator.Resolve(parse.GetValue(model)!);
            var scalar = PrecisionPolicy.ParseDType(parse.GetValue(dtype)!, "--dtype");
            var outDir = parse.GetValue(output)!;
            if (Path.GetFullPath(outDir) == Path.GetFullPath(modelDir))
                throw new InvalidInputException($"--out: {outDir} is the base model folder; choose another folder so the base stays intact");
            using var lm = ModelLoader.Load(modelDir, new ModelLoadOptions { Adapter = SavedLoraAdapter.Open(parse.GetValue(adapter)!) });
            ModelIO.SaveTensors(lm.Config, LoraMerge.MergedTensors(lm, scalar), scalar, outDir);
            CompanionFiles.CopyMissing(modelDir, outDir);
            console.Out.WriteLine($"merged {parse.GetValue(adapter)} into {modelDir} → {outDir} ({PrecisionPolicy.DTypeName(scalar)})");
            return 0;
        });
        return command;
    }
}
