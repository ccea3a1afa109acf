using System.CommandLine;
using SharpTune.Inference;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune generate`: continue a prompt, greedy unless a temperature is given.</summary>
public static class GenerateCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model") { Description = "Model folder or a repo id in the HF cache.", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder to apply on top of the model." };
        var promptIds = new Option<string?>("--prompt-ids") { Description = "Prompt as comma-separated token ids, e.g. 1,2,3." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "How many tokens to generate at most.", DefaultValueFactory = _ => 128 };
        var temperature = new Option<double?>("--temperature") { Description = "Sampling temperature; omit or 0 for greedy." };
        var topK = new Option<int?>("--top-k") { Description = "Keep the k most likely tokens." };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling: keep the smallest set with this much probability." };
        var minP = new Option<double?>("--min-p") { Description = "Drop tokens below min_p × the top token's probability." };
        var repetition = new Option<double>("--repetition-penalty") { Description = "Penalty > 1 discourages repeating seen tokens.", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long?>("--seed") { Description = "Seed for sampling." };
        var outputIds = new Option<bool>("--output-ids") { Description = "Print the new token ids as a JSON array on stdout." };
        var command = new Command("generate", "Generate a continuation of a prompt with the KV cache.")
        {
            model, adapter, promptIds, maxNew, temperature, topK, topP, minP, repetition, seed, outputIds,
        };
        console.Bind(command, parse =>
        {
            var prompt = ParseIds(parse.GetValue(promptIds) ?? throw new InvalidInputException("generate: give a prompt with --prompt-ids"));
            using var lm = ModelLoading.Load(parse.GetValue(model)!, parse.GetValue(adapter));
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew),
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                MinP = parse.GetValue(minP),
                RepetitionPenalty = parse.GetValue(repetition),
                Seed = parse.GetValue(seed),
                EosTokenIds = lm.Config.EosTokenIds.Select(e => (long)e).ToArray(),
            };
            var ids = TokenGenerator.Generate(lm, prompt, options);
            console.Out.WriteLine(parse.GetValue(outputIds) ? "[" + string.Join(",", ids) + "]" : string.Join(" ", ids));
            return 0;
        });
        return command;
    }

    private static long[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new InvalidInputException("--prompt-ids: empty; expected comma-separated token ids like 1,2,3");
        return parts.Select(p => long.TryParse(p, out var id) && id >= 0
            ? id
            : throw new InvalidInputException($"--prompt-ids: '{p}' is not a token id; expected comma-separated non-negative integers")).ToArray();
    }
}
