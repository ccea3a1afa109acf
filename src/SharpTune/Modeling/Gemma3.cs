using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>
/// Gemma 3 text (Gemma3ForCausalLM, model_type gemma3_text): Gemma2's block (sandwich norms, scaled embeddings, (1 + w)
/// norms, query_pre_attn_scalar) plus per-head q_norm / k_norm; layer i slides (window sliding_window) unless
/// (i + 1) % sliding_window_pattern == 0, or as layer_types lists; sliding layers rotate with base
/// rope_local_base_freq and no scaling, global layers with rope_theta and rope_scaling. Soft-caps only where set.
/// </summary>
public sealed class Gemma3 : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 262208, HiddenSize = 2304, IntermediateSize = 9216, Layers = 26, Heads = 8, KvHeads = 4,
        HeadDim = 256, MaxPositions = 131072, RmsNormEps = 1e-6, RopeTheta = 1_000_000, Tie = true, HiddenAct = "gelu_pytorch_tanh",
    };

    public string ModelType => "gemma3_text";
    public string Architecture => "Gemma3ForCausalLM";

    public ModelConfig Parse(ConfigJson j)
    {
        var config = Gemma.ParseGemmaCommon(j, ModelType, Defaults);
        if (j.Bool("use_bidirectional_attention", false))
            throw new InvalidInputException($"{j.Source}: use_bidirectional_attention: true (Gemma 3 embedding models) is not supported; SharpTune trains causal decoders");
        int? window = j.Contains("sliding_window") ? j.IntOrNull("sliding_window") : 4096;
        int pattern = j.Int("sliding_window_pattern", 6);
        if (pattern < 1) throw new InvalidInputException($"{j.Source}: sliding_window_pattern must be ≥ 1, found {pattern}");
        var layers = j.SlidingLayerTypes(config.NumHiddenLayers)
            ?? Enumerable.Range(0, config.NumHiddenLayers).Select(i => (i + 1) % pattern != 0).ToArray();
        return config with
        {
            SandwichNorms = true,
            QkNorm = true,
            AttentionScale = 1.0 / Math.Sqrt(j.Double("query_pre_attn_scalar", 256)),
            AttnLogitSoftcapping = j.DoubleOrNull("attn_logit_softcapping"),
            FinalLogitSoftcapping = j.DoubleOrNull("final_logit_softcapping"),
            SlidingWindow = window,
            SlidingLayers = layers,
            LocalRopeTheta = j.Double("rope_local_base_freq", 10000),
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 4, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["head_dim"] = 16, ["max_position_embeddings"] = 256, ["query_pre_attn_scalar"] = 16, ["sliding_window"] = 4, ["sliding_window_pattern"] = 3, ["rope_theta"] = 1000000.0, ["rope_local_base_freq"] = 10000.0, ["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 8.0 }, ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["pad_token_id"] = 0 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 2048, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["head_dim"] = 64, ["max_position_embeddings"] = 2048, ["query_pre_attn_scalar"] = 64, ["sliding_window"] = 512, ["sliding_window_pattern"] = 4, ["rope_theta"] = 1000000.0, ["rope_local_base_freq"] = 10000.0, ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["pad_token_id"] = 0 }),
        ["gemma-3-1b"] = Preset(new() { ["vocab_size"] = 262144, ["hidden_size"] = 1152, ["intermediate_size"] = 6912, ["num_hidden_layers"] = 26, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 1, ["head_dim"] = 256, ["max_position_embeddings"] = 32768, ["query_pre_attn_scalar"] = 256, ["sliding_window"] = 512, ["sliding_window_pattern"] = 6, ["rope_theta"] = 1000000.0, ["rope_local_base_freq"] = 10000.0, ["rope_scaling"] = null, ["bos_token_id"] = 2, ["eos_token_id"] = new JsonArray(1, 106), ["pad_token_id"] = 0 }),
        ["gemma-3-4b"] = Preset(new() { ["vocab_size"] = 262208, ["hidden_size"] = 2560, ["intermediate_size"] = 10240, ["num_hidden_layers"] = 34, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["head_dim"] = 256, ["max_position_embeddings"] = 131072, ["query_pre_attn_scalar"] = 256, ["sliding_window"] = 1024, ["sliding_window_pattern"] = 6, ["rope_theta"] = 1000000.0, ["rope_local_base_freq"] = 10000.0, ["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 8.0 }, ["bos_token_id"] = 2, ["eos_token_id"] = new JsonArray(1, 106), ["pad_token_id"] = 0 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("gemma3_text", "Gemma3ForCausalLM", fields);
}
