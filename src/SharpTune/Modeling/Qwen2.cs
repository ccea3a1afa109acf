using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>Qwen2 / Qwen2.5: biased q/k/v projections (o_proj unbiased); sliding window only when use_sliding_window, on layers ≥ max_window_layers.</summary>
public sealed class Qwen2 : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 151936, HiddenSize = 4096, IntermediateSize = 22016, Layers = 32, Heads = 32, KvHeads = 32,
        MaxPositions = 32768, RmsNormEps = 1e-6, RopeTheta = 10000, Tie = false, HiddenAct = "silu",
    };

    public string ModelType => "qwen2";
    public string Architecture => "Qwen2ForCausalLM";

    public ModelConfig Parse(ConfigJson j)
    {
        var config = CommonConfig.Parse(j, ModelType, Defaults);
        var (window, layers) = SlidingWindow(j, config.NumHiddenLayers);
        return config with
        {
            QkvBias = true,
            OutputBias = false,
            SlidingWindow = window,
            SlidingLayers = layers,
        };
    }

    /// <summary>
    /// The Qwen families' window (Qwen2, Qwen3, Qwen3-MoE): only with use_sliding_window, on the layers from
    /// max_window_layers on, or where layer_types says sliding_attention.
    /// </summary>
    internal static (int? Window, IReadOnlyList<bool> Layers) SlidingWindow(ConfigJson j, int layers)
    {
        bool useSliding = j.Bool("use_sliding_window", false);
        int? window = !useSliding ? null : j.Contains("sliding_window") ? j.IntOrNull("sliding_window") : 4096;
        int maxWindowLayers = j.Int("max_window_layers", 28);
        var types = j.SlidingLayerTypes(layers);
        return (window, Enumerable.Range(0, layers).Select(i => window is not null && (types?[i] ?? i >= maxWindowLayers)).ToArray());
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 256, ["tie_word_embeddings"] = true, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 1408, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 2048, ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = true, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["qwen2.5-0.5b"] = Preset(new() { ["vocab_size"] = 151936, ["hidden_size"] = 896, ["intermediate_size"] = 4864, ["num_hidden_layers"] = 24, ["num_attention_heads"] = 14, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 32768, ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = true, ["use_sliding_window"] = false, ["sliding_window"] = 32768, ["max_window_layers"] = 24, ["bos_token_id"] = 151643, ["eos_token_id"] = 151643 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("qwen2", "Qwen2ForCausalLM", fields);
}
