using System.Text.Json;
using SharpTune.Modeling;
using SharpTune.Tokenization;

namespace SharpTune.Inference;

/// <summary>What a model folder says about generation: every EOS id of generation_config.json and config.json (Llama 3 lists several).</summary>
public sealed record GenerationDefaults(IReadOnlyList<long> EosTokenIds)
{
    public static GenerationDefaults Load(string modelDir, ModelConfig config)
    {
        var ids = new List<long>(config.EosTokenIds.Select(e => (long)e));
        var path = Path.Combine(modelDir, "generation_config.json");
        if (File.Exists(path))
        {
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(path));
                if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("eos_token_id", out var eos))
                {
                    if (eos.ValueKind == JsonValueKind.Number) ids.Add(eos.GetInt64());
                    else if (eos.ValueKind == JsonValueKind.Array)
                        ids.AddRange(eos.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.Number).Select(e => e.GetInt64()));
                    else if (eos.ValueKind != JsonValueKind.Null)
                        throw new InvalidInputException($"{path}: eos_token_id is {eos.ValueKind}; expected an integer or a list of integers");
                }
            }
            catch (JsonException e)
            {
                throw new InvalidInputException($"{path}: not valid JSON ({e.Message})");
            }
        }
        return new GenerationDefaults(ids.Distinct().ToArray());
    }

    /// <summary>The ids that end a generation: the model folder's EOS ids and the tokenizer's eos token.</summary>
    public IReadOnlyList<long> StopTokenIds(HfTokenizer tokenizer) =>
        EosTokenIds.Concat(tokenizer.EosTokenId is { } eos ? [(long)eos] : []).Distinct().ToArray();
}
