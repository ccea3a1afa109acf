using System.CommandLine;
using SharpTune.Hub;
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
        var prompt = new Option<string[]>("--prompt") { Description = "Text prompt (tokenized with BOS); repeat for a left-padded batch." };
        var chat = new Option<string[]>("--chat") { Description = "User message sent through the chat template; repeat for a batch." };
        var system = new Option<string?>("--system") { Description = "System message for --chat." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder; default the model folder." };
        var samplingOptions = new SamplingOptions(defaultMaxNewTokens: 128);
        var outputIds = new Option<bool>("--output-ids") { Description = "Print the new token ids as a JSON array on stdout." };
        var device = ModelLoading.DeviceOption();
        var dtype = ModelLoading.DTypeOption();
        var command = new Command("generate", "Generate a continuation of a prompt with the KV cache.")
        {
            model, adapter, device, dtype, promptIds, prompt, chat, system, tokenizer, outputIds,
        };
        samplingOptions.AddTo(command);
        console.Bind(command, parse =>
        {
            var texts = parse.GetValue(prompt) ?? [];
            var chats = parse.GetValue(chat) ?? [];
            var idsText = parse.GetValue(promptIds);
            int given = (texts.Length > 0 ? 1 : 0) + (chats.Length > 0 ? 1 : 0) + (idsText is null ? 0 : 1);
            if (given != 1) throw new InvalidInputException("generate: give exactly one of --prompt TEXT, --chat TEXT or --prompt-ids 1,2,3");
            var sampling = samplingOptions.Sampling(parse);
            if (idsText is not null)
            {
                var ids = TokenIds.Parse(idsText, "--prompt-ids");
                using var lm = ModelLoading.Model(parse.GetValue(model)!, parse.GetValue(adapter), parse.GetValue(device), parse.GetValue(dtype));
                var eos = GenerationDefaults.Load(ModelLocator.Resolve(parse.GetValue(model)!), lm.Config).EosTokenIds;
                var produced = TokenGenerator.Generate(lm, ids, sampling with { EosTokenIds = eos.Concat(sampling.EosTokenIds).Distinct().ToArray() });
                console.Out.WriteLine(parse.GetValue(outputIds) ? "[" + string.Join(",", produced) + "]" : string.Join(" ", produced));
                return 0;
            }
            var generator = ModelLoading.Generator(parse.GetValue(model)!, parse.GetValue(adapter), parse.GetValue(tokenizer), parse.GetValue(device), parse.GetValue(dtype));
            using var weights = generator.Model;
            var systemText = parse.GetValue(system);
            var prompts = texts.Length > 0
                ? texts.Select(generator.EncodePrompt).ToArray()
                : chats.Select(c => generator.EncodeChat([.. systemText is null ? Array.Empty<ChatMessage>() : [new ChatMessage("system", systemText)], new ChatMessage("user", c)])).ToArray();
            var options = samplingOptions.Text(parse);
            bool asIds = parse.GetValue(outputIds);
            // One prompt streams to the terminal as it is generated; a batch prints each result when all are done.
            bool streaming = prompts.Length == 1 && !asIds;
            var results = generator.GenerateBatch(prompts, options, streaming ? (_, piece) => { console.Out.Write(piece); console.Out.Flush(); } : null);
            if (streaming) console.Out.WriteLine();
            else if (asIds) foreach (var r in results) console.Out.WriteLine("[" + string.Join(",", r.Ids) + "]");
            else for (int i = 0; i < results.Count; i++) console.Out.WriteLine((results.Count > 1 ? $"[{i}] " : "") + results[i].Text);
            return 0;
        });
        return command;
    }
}
