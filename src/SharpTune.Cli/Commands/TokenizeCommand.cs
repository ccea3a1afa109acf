using System.CommandLine;
using SharpTune.Tokenization;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune tokenize`: ids and token strings for a text or a JSONL file, optionally through the chat template.</summary>
public static class TokenizeCommand
{
    public static Command Create(CliConsole console)
    {
        var tokenizer = new Option<string>("--tokenizer") { Description = "Folder with tokenizer.json (+ tokenizer_config.json)", Required = true };
        var text = new Option<string?>("--text") { Description = "One text to tokenize (with --chat: one user message)" };
        var input = new Option<string?>("--input") { Description = "JSONL file: one string or {\"text\": ...} per line; with --chat {\"messages\": [...], ...}" };
        var chat = new Option<bool>("--chat") { Description = "Render each row's messages with the tokenizer's chat template first" };
        var noSpecial = new Option<bool>("--no-special-tokens") { Description = "Do not add BOS/EOS from the post-processor" };
        var generationPrompt = new Option<bool>("--add-generation-prompt") { Description = "With --chat: end with the assistant header" };
        var output = new Option<string>("--output") { Description = "JSON file to write: {\"input_ids\": [[...]], \"tokens\": [[...]], \"offsets\": ...}", Required = true };
        var command = new Command("tokenize", "Tokenize text exactly as Hugging Face tokenizers do.")
        {
            tokenizer, text, input, chat, noSpecial, generationPrompt, output,
        };
        console.Bind(command, parse =>
        {
            var summary = TokenizeFile.Run(new TokenizeRequest(
                parse.GetValue(tokenizer)!, parse.GetValue(text), parse.GetValue(input), parse.GetValue(chat),
                !parse.GetValue(noSpecial), parse.GetValue(generationPrompt), parse.GetValue(output)!));
            console.Out.WriteLine($"tokenized {summary.Rows} row(s), {summary.Tokens} tokens -> {parse.GetValue(output)}");
            return 0;
        });
        return command;
    }
}
