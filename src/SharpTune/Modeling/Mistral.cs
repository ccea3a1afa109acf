using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>Mistral: Llama's block with a sliding attention window on every layer (sliding_window, null = off).</summary>
public sealed class Mistral : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 32000, HiddenSize = 4096, IntermediateSize = 14336, Layers = 32, Heads = 32, KvHeads = 8,
        MaxPositions = 4096 * 32, RmsNormEps = 1e-6, RopeTheta = 10000, Tie = false, HiddenAct = "silu",
    };

    public string ModelType => "mistral";
    public string Architecture => "MistralForCausalLM";

    public ModelConfig Parse(ConfigJson j)
    {
        var config = CommonConfig.Parse(j, ModelType, Defaults);
        int? window = j.Contains("sliding_window") ? j.IntOrNull("sliding_window") : 4096;   // explicit null = no window (Mistral v0.2+)
        return config with
        {
            SlidingWindow = window,
            SlidingLayers = Enumerable.Repeat(window is not null, config.NumHiddenLayers).ToArray(),
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 256, ["sliding_window"] = 8, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 1408, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = 2048, ["rms_norm_eps"] = 1e-5, ["sliding_window"] = 1024, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["mistral-7b"] = Preset(new() { ["vocab_size"] = 32768, ["hidden_size"] = 4096, ["intermediate_size"] = 14336, ["num_hidden_layers"] = 32, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 8, ["max_position_embeddings"] = 32768, ["rope_theta"] = 1000000.0, ["sliding_window"] = null, ["rms_norm_eps"] = 1e-5, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("mistral", "MistralForCausalLM", fields);
}
