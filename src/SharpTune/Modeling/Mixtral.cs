using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>
/// Mixtral: Mistral's attention (sliding_window when set, on every layer); every MLP is `block_sparse_moe` with router
/// `gate` over num_local_experts experts `experts.{e}.w1/w3/w2`, top num_experts_per_tok, always renormalised.
/// </summary>
public sealed class Mixtral : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 32000, HiddenSize = 4096, IntermediateSize = 14336, Layers = 32, Heads = 32, KvHeads = 8,
        MaxPositions = 4096 * 32, RmsNormEps = 1e-5, RopeTheta = 1e6, Tie = false, HiddenAct = "silu",
    };

    public string ModelType => "mixtral";
    public string Architecture => "MixtralForCausalLM";

    public ModelConfig Parse(ConfigJson j)
    {
        var config = CommonConfig.Parse(j, ModelType, Defaults);
        int? window = j.IntOrNull("sliding_window");
        var all = Enumerable.Repeat(true, config.NumHiddenLayers).ToArray();
        return config with
        {
            SlidingWindow = window,
            SlidingLayers = Enumerable.Repeat(window is not null, config.NumHiddenLayers).ToArray(),
            Moe = new MoeConfig(
                MoeLayout.Mixtral, j.Int("num_local_experts", 8), j.Int("num_experts_per_tok", 2), config.IntermediateSize, true, all,
                j.Bool("output_router_logits", false), j.Double("router_aux_loss_coef", 0.001), j.Double("router_jitter_noise", 0.0)),
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["num_local_experts"] = 4, ["num_experts_per_tok"] = 2, ["max_position_embeddings"] = 256, ["rope_theta"] = 10000.0, ["sliding_window"] = null, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 768, ["num_hidden_layers"] = 4, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["num_local_experts"] = 8, ["num_experts_per_tok"] = 2, ["max_position_embeddings"] = 2048, ["sliding_window"] = null, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["mixtral-8x7b"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 4096, ["intermediate_size"] = 14336, ["num_hidden_layers"] = 32, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 8, ["num_local_experts"] = 8, ["num_experts_per_tok"] = 2, ["max_position_embeddings"] = 32768, ["rope_theta"] = 1000000.0, ["rms_norm_eps"] = 1e-5, ["sliding_window"] = null, ["router_aux_loss_coef"] = 0.02, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("mixtral", "MixtralForCausalLM", fields);
}
