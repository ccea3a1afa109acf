using System.CommandLine;
using SharpTune.Inference;

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
        var sampling = new SamplingOptions(defaultMaxNewTokens: 512);
        var device = ModelLoading.DeviceOption();
        var dtype = ModelLoading.DTypeOption();
        var command = new Command("chat", "Chat with a model in the terminal (/reset clears the history, /exit quits).")
        {
            model, adapter, device, dtype, tokenizer, system,
        };
        sampling.AddTo(command);
        console.Bind(command, parse =>
        {
            var options = sampling.Text(parse);
            var generator = ModelLoading.Generator(parse.GetValue(model)!, parse.GetValue(adapter), parse.GetValue(tokenizer), parse.GetValue(device), parse.GetValue(dtype));
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
