using System.CommandLine;
using SharpTune.Export;
using SharpTune.Hub;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune export --format gguf`: one GGUF file for llama.cpp (and Ollama, LM Studio, LLamaSharp).</summary>
public static class ExportCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model") { Description = "Model folder or a repo id in the HF cache.", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA/DoRA adapter folder, merged into the weights first." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Folder with tokenizer.json/tokenizer.model (default: the model folder)." };
        var format = new Option<string>("--format") { Description = "Output format: gguf.", DefaultValueFactory = _ => "gguf" };
        var outType = new Option<string>("--outtype") { Description = "Tensor types: f32, f16, bf16, q8_0, q4_0, q4_k_m.", DefaultValueFactory = _ => "f16" };
        var output = new Option<string>("--out") { Description = "The .gguf file to write.", Required = true };
        var command = new Command("export", "Export a model (with an adapter merged) to GGUF for llama.cpp.") { model, adapter, tokenizer, format, outType, output };
        console.Bind(command, parse =>
        {
            if (parse.GetValue(format) != "gguf")
                throw new InvalidInputException($"--format: '{parse.GetValue(format)}' is not supported; allowed: gguf");
            var type = GgufQuantMix.Parse(parse.GetValue(outType)!);
            var modelDir = ModelLocator.Resolve(parse.GetValue(model)!);
            var result = GgufExporter.Export(modelDir, parse.GetValue(adapter), parse.GetValue(tokenizer), type, parse.GetValue(output)!,
                w => console.Error.WriteLine($"warning: {w}"));
            var counts = string.Join(", ", result.Tensors.GroupBy(t => t.Type).Select(g => $"{g.Count()} {GgmlTypes.Name(g.Key)}"));
            console.Out.WriteLine($"wrote {result.Path} ({result.Bytes / 1e6:F1} MB; {result.Tensors.Count} tensors: {counts})");
            return 0;
        });
        return command;
    }
}
