using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>
/// Qwen3: Qwen2's decoder with per-head q_norm / k_norm (plain RMSNorm over head_dim, before RoPE), no q/k/v biases
/// (attention_bias covers q, k, v and o), head_dim set on its own (128) rather than hidden / heads.
/// </summary>
public sealed class Qwen3 : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 151936, HiddenSize = 4096, IntermediateSize = 22016, Layers = 32, Heads = 32, KvHeads = 32,
        HeadDim = 128, MaxPositions = 32768, RmsNormEps = 1e-6, RopeTheta = 10000, Tie = false, HiddenAct = "silu",
    };

    public string ModelType => "qwen3";
    public string Architecture => "Qwen3ForCausalLM";

    public ModelConfig Parse(ConfigJson j) => ParseQwen3Common(j, ModelType, Defaults);

    /// <summary>What Qwen3 and Qwen3-MoE share: the attention.</summary>
    internal static ModelConfig ParseQwen3Common(ConfigJson j, string modelType, FamilyDefaults defaults)
    {
        var config = CommonConfig.Parse(j, modelType, defaults);
        bool attentionBias = j.Bool("attention_bias", false);
        var (window, layers) = Qwen2.SlidingWindow(j, config.NumHiddenLayers);
        return config with
        {
            QkvBias = attentionBias,
            OutputBias = attentionBias,
            QkNorm = true,
            SlidingWindow = window,
            SlidingLayers = layers,
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["head_dim"] = 16, ["max_position_embeddings"] = 256, ["tie_word_embeddings"] = false, ["sliding_window"] = null, ["use_sliding_window"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 1408, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["head_dim"] = 64, ["max_position_embeddings"] = 2048, ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = true, ["sliding_window"] = null, ["use_sliding_window"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["qwen3-0.6b"] = Preset(new() { ["vocab_size"] = 151936, ["hidden_size"] = 1024, ["intermediate_size"] = 3072, ["num_hidden_layers"] = 28, ["num_attention_heads"] = 16, ["num_key_value_heads"] = 8, ["head_dim"] = 128, ["max_position_embeddings"] = 40960, ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = true, ["sliding_window"] = null, ["use_sliding_window"] = false, ["max_window_layers"] = 28, ["bos_token_id"] = 151643, ["eos_token_id"] = 151645 }),
        ["qwen3-8b"] = Preset(new() { ["vocab_size"] = 151936, ["hidden_size"] = 4096, ["intermediate_size"] = 12288, ["num_hidden_layers"] = 36, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 8, ["head_dim"] = 128, ["max_position_embeddings"] = 40960, ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = false, ["sliding_window"] = null, ["use_sliding_window"] = false, ["max_window_layers"] = 36, ["bos_token_id"] = 151643, ["eos_token_id"] = 151645 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("qwen3", "Qwen3ForCausalLM", fields);
}
