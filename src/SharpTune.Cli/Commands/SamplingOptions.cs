using System.CommandLine;
using SharpTune.Inference;

namespace SharpTune.Cli.Commands;

/// <summary>The sampling options `generate` and `chat` share, declared once.</summary>
internal sealed class SamplingOptions(int defaultMaxNewTokens)
{
    private readonly Option<int> maxNew = new("--max-new-tokens") { Description = "How many tokens to generate at most.", DefaultValueFactory = _ => defaultMaxNewTokens };
    private readonly Option<double?> temperature = new("--temperature") { Description = "Sampling temperature; omit or 0 for greedy." };
    private readonly Option<int?> topK = new("--top-k") { Description = "Keep the k most likely tokens." };
    private readonly Option<double?> topP = new("--top-p") { Description = "Nucleus sampling: keep the smallest set with this much probability." };
    private readonly Option<double?> minP = new("--min-p") { Description = "Drop tokens below min_p × the top token's probability." };
    private readonly Option<double> repetition = new("--repetition-penalty") { Description = "Penalty > 1 discourages repeating seen tokens.", DefaultValueFactory = _ => 1.0 };
    private readonly Option<long?> seed = new("--seed") { Description = "Seed for sampling." };
    private readonly Option<string[]> stop = new("--stop") { Description = "Stop string (repeatable): generation ends when the text contains it; it is cut off." };
    private readonly Option<string?> stopTokenIds = new("--stop-token-ids")
    {
        Description = "Comma-separated token ids that end generation, besides the model's EOS ids (config.json, generation_config.json), e.g. 1 for llama2.c story models.",
    };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { maxNew, temperature, topK, topP, minP, repetition, seed, stop, stopTokenIds }) command.Options.Add(option);
    }

    public GenerationOptions Sampling(ParseResult parse) => new GenerationOptions
    {
        MaxNewTokens = parse.GetValue(maxNew),
        Temperature = parse.GetValue(temperature),
        TopK = parse.GetValue(topK),
        TopP = parse.GetValue(topP),
        MinP = parse.GetValue(minP),
        RepetitionPenalty = parse.GetValue(repetition),
        Seed = parse.GetValue(seed),
        EosTokenIds = TokenIds.Parse(parse.GetValue(stopTokenIds), "--stop-token-ids"),
    }.Validated();

    public TextGenerationOptions Text(ParseResult parse) => new() { Sampling = Sampling(parse), StopStrings = parse.GetValue(stop) ?? [] };
}
