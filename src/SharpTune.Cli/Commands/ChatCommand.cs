using System.CommandLine;
using SharpTune.Inference;
using SharpTune.Serving;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune chat`: an interactive conversation on stdin/stdout through the chat template.</summary>
public static class ChatCommand
{
    public static Command Create(CliConsole console, TextReader? input = null)
    {
        var model = new Option<string>("--model") { Description = "Model folder or a repo id in the HF cache.", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder to apply on top of the model." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder; default the model folder." };
        var system = new Option<string?>("--system") { Description = "System message at the start of the conversation." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Longest reply in tokens.", DefaultValueFactory = _ => 512 };
        var temperature = new Option<double?>("--temperature") { Description = "Sampling temperature; omit or 0 for greedy." };
        var topK = new Option<int?>("--top-k") { Description = "Keep the k most likely tokens." };
        var topP = new Option<double?>("--top-p") { Description = "Nucleus sampling threshold." };
        var minP = new Option<double?>("--min-p") { Description = "Drop tokens below min_p × the top token's probability." };
        var repetition = new Option<double>("--repetition-penalty") { Description = "Penalty > 1 discourages repeating seen tokens.", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<long?>("--seed") { Description = "Seed for sampling." };
        var stop = new Option<string[]>("--stop") { Description = "Stop string (repeatable)." };
        var device = ModelLoading.DeviceOption();
        var command = new Command("chat", "Chat with a model in the terminal (/reset clears the history, /exit quits).")
        {
            model, adapter, device, tokenizer, system, maxNew, temperature, topK, topP, minP, repetition, seed, stop,
        };
        console.Bind(command, parse =>
        {
            var options = new TextGenerationOptions
            {
                Sampling = new GenerationOptions
                {
                    MaxNewTokens = parse.GetValue(maxNew),
                    Temperature = parse.GetValue(temperature),
                    TopK = parse.GetValue(topK),
                    TopP = parse.GetValue(topP),
                    MinP = parse.GetValue(minP),
                    RepetitionPenalty = parse.GetValue(repetition),
                    Seed = parse.GetValue(seed),
                }.Validated(),
                StopStrings = parse.GetValue(stop) ?? [],
            };
            var generator = ServedModel.Load(parse.GetValue(model)!, parse.GetValue(adapter), parse.GetValue(tokenizer), parse.GetValue(device));
            using var weights = generator.Model;
            if (generator.Tokenizer.ChatTemplate is null)
                throw new InvalidInputException($"{parse.GetValue(model)}: the tokenizer has no chat_template; use `sharptune generate --prompt` for plain text");
            var session = new ChatSession(generator, options, parse.GetValue(system));
            session.RunLoop(input ?? Console.In, console.Out, console.Error);
            return 0;
        });
        return command;
    }
}
