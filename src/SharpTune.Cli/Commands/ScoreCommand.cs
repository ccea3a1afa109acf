using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Inference;
using SharpTune.Modeling;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune score`: loss, per-row log-probs and last logits of given token rows (DESIGN.md contract).</summary>
public static class ScoreCommand
{
    public static Command Create(CliConsole console)
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + safetensors) or a repo id in the HF cache.", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder to apply on top of the model." };
        var input = new Option<string>("--input") { Description = "JSON file: {\"input_ids\": [[...]], \"labels\"?: [[...]], \"attention_mask\"?: [[...]]}.", Required = true };
        var output = new Option<string>("--output") { Description = "Where to write {loss, logprob_sum_per_row, n_label_tokens_per_row, last_logits}.", Required = true };
        var device = ModelLoading.DeviceOption();
        var command = new Command("score", "Compute the causal-LM loss and log-probs of token rows in float32.") { model, adapter, input, output, device };
        console.Bind(command, parse =>
        {
            var inputPath = parse.GetValue(input)!;
            var request = ReadRequest(inputPath);
            using var lm = ModelLoading.Model(parse.GetValue(model)!, parse.GetValue(adapter), parse.GetValue(device));
            var result = Scorer.Score(lm, request);
            var json = new JsonObject
            {
                ["loss"] = result.Loss,
                ["logprob_sum_per_row"] = new JsonArray(result.LogprobSumPerRow.Select(v => (JsonNode)v).ToArray()),
                ["n_label_tokens_per_row"] = new JsonArray(result.NLabelTokensPerRow.Select(v => (JsonNode)v).ToArray()),
                ["last_logits"] = new JsonArray(result.LastLogits.Select(row => (JsonNode)new JsonArray(row.Select(v => (JsonNode)v).ToArray())).ToArray()),
            };
            ModelIO.WriteJsonAtomic(parse.GetValue(output)!, json);
            console.Out.WriteLine($"loss {result.Loss:F6} over {result.NLabelTokensPerRow.Sum()} label tokens");
            return 0;
        });
        return command;
    }

    private static ScoreRequest ReadRequest(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: input file not found");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidInputException($"{path}: expected a JSON object with input_ids");
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message})");
        }
        long[][]? Rows(string key)
        {
            if (json[key] is null) return null;
            var problem = new InvalidInputException($"{path}: {key} must be a list of rows of integers");
            if (json[key] is not JsonArray rows) throw problem;
            return rows.Select(row => row is JsonArray values
                ? values.Select(v => v is JsonValue value && value.TryGetValue<long>(out var id) ? id : throw problem).ToArray()
                : throw problem).ToArray();
        }
        var ids = Rows("input_ids") ?? throw new InvalidInputException($"{path}: input_ids is missing");
        return new ScoreRequest(ids, Rows("labels"), Rows("attention_mask"));
    }
}
