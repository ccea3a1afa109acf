using System.CommandLine;
using SharpTune.Serving;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune serve`: the OpenAI-compatible HTTP API until SIGTERM / Ctrl+C.</summary>
public static class ServeCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model") { Description = "Model folder or a repo id in the HF cache.", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder to apply on top of the model." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder; default the model folder." };
        var host = new Option<string>("--host") { Description = "Address to bind (loopback by default; 0.0.0.0 exposes the server).", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port.", DefaultValueFactory = _ => 8000 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on /v1 requests (default: $SHARPTUNE_API_KEY, else none)." };
        var name = new Option<string?>("--model-name") { Description = "Model id reported by /v1/models; default the folder name." };
        var maxTokens = new Option<int>("--max-tokens-cap") { Description = "Largest max_tokens a request may ask for.", DefaultValueFactory = _ => 2048 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Most waiting requests decoded together in one batch.", DefaultValueFactory = _ => 8 };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body in bytes.", DefaultValueFactory = _ => 1 << 20 };
        var device = ModelLoading.DeviceOption();
        var dtype = ModelLoading.DTypeOption();
        var command = new Command("serve", "Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, /v1/models).")
        {
            model, adapter, device, dtype, tokenizer, host, port, apiKey, name, maxTokens, maxBody, maxBatch,
        };
        console.Bind(command, parse =>
        {
            var modelArg = parse.GetValue(model)!;
            var options = new ServerOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                ApiKey = parse.GetValue(apiKey) ?? (Environment.GetEnvironmentVariable("SHARPTUNE_API_KEY") is { Length: > 0 } key ? key : null),
                ModelId = parse.GetValue(name) ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(modelArg)),
                MaxTokensCap = parse.GetValue(maxTokens),
                MaxRequestBodyBytes = parse.GetValue(maxBody),
                MaxBatchSize = parse.GetValue(maxBatch),
            }.Validated();
            var generator = ModelLoading.Generator(modelArg, parse.GetValue(adapter), parse.GetValue(tokenizer), parse.GetValue(device), parse.GetValue(dtype));
            using var weights = generator.Model;
            return ServiceRun.Serve(new OpenAiServer(generator, options, console.Error), console,
                address => $"serving '{options.ModelId}' on {address} (OpenAI API at {address}v1{(options.ApiKey is null ? "" : ", API key required")}); Ctrl+C or SIGTERM stops",
                "server stopped");
        });
        return command;
    }
}
