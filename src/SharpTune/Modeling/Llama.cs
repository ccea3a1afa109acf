using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>Llama 2 / 3 / 3.1 / 3.2: the reference decoder. attention_bias covers q, k, v and o; rope_scaling llama3 for 3.1+.</summary>
public sealed class Llama : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 32000, HiddenSize = 4096, IntermediateSize = 11008, Layers = 32, Heads = 32, MaxPositions = 2048,
        RmsNormEps = 1e-6, RopeTheta = 10000, Tie = false, HiddenAct = "silu",
    };

    public string ModelType => "llama";
    public string Architecture => "LlamaForCausalLM";

    public ModelConfig Parse(ConfigJson j)
    {
        bool attentionBias = j.Bool("attention_bias", false);
        return CommonConfig.Parse(j, ModelType, Defaults) with
        {
            QkvBias = attentionBias,
            OutputBias = attentionBias,
            MlpBias = j.Bool("mlp_bias", false),
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["max_position_embeddings"] = 256, ["rms_norm_eps"] = 1e-6, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 1408, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = 2048, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = true, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["llama-3.2-1b"] = Preset(new() { ["vocab_size"] = 128256, ["hidden_size"] = 2048, ["intermediate_size"] = 8192, ["num_hidden_layers"] = 16, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 8, ["head_dim"] = 64, ["max_position_embeddings"] = 131072, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 500000.0, ["tie_word_embeddings"] = true, ["bos_token_id"] = 128000, ["eos_token_id"] = new JsonArray(128001, 128008, 128009), ["rope_scaling"] = Llama3Scaling(32.0) }),
        ["llama-3.1-8b"] = Preset(new() { ["vocab_size"] = 128256, ["hidden_size"] = 4096, ["intermediate_size"] = 14336, ["num_hidden_layers"] = 32, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 8, ["max_position_embeddings"] = 131072, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 500000.0, ["tie_word_embeddings"] = false, ["bos_token_id"] = 128000, ["eos_token_id"] = new JsonArray(128001, 128008, 128009), ["rope_scaling"] = Llama3Scaling(8.0) }),
        ["llama-2-7b"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 4096, ["intermediate_size"] = 11008, ["num_hidden_layers"] = 32, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 32, ["max_position_embeddings"] = 4096, ["rms_norm_eps"] = 1e-5, ["rope_theta"] = 10000.0, ["tie_word_embeddings"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
    };

    private static JsonObject Llama3Scaling(double factor) => new()
    {
        ["rope_type"] = "llama3", ["factor"] = factor, ["low_freq_factor"] = 1.0, ["high_freq_factor"] = 4.0, ["original_max_position_embeddings"] = 8192,
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("llama", "LlamaForCausalLM", fields);
}
