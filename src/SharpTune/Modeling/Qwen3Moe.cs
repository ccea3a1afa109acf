using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>
/// Qwen3-MoE: Qwen3's attention; the MLP of layer i is a sparse block `mlp` (router `mlp.gate`, experts
/// `mlp.experts.{e}.gate/up/down_proj` of width moe_intermediate_size, top num_experts_per_tok, renormalised when
/// norm_topk_prob) unless i is in mlp_only_layers or (i + 1) is not a multiple of decoder_sparse_step, where it is the
/// dense MLP of width intermediate_size.
/// </summary>
public sealed class Qwen3Moe : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 151936, HiddenSize = 2048, IntermediateSize = 6144, Layers = 24, Heads = 32, KvHeads = 4,
        MaxPositions = 32768, RmsNormEps = 1e-6, RopeTheta = 10000, Tie = false, HiddenAct = "silu",
    };

    public string ModelType => "qwen3_moe";
    public string Architecture => "Qwen3MoeForCausalLM";

    public ModelConfig Parse(ConfigJson j)
    {
        var config = Qwen3.ParseQwen3Common(j, ModelType, Defaults);
        int experts = j.Int("num_experts", 128);
        int step = j.Int("decoder_sparse_step", 1);
        if (step < 1) throw new InvalidInputException($"{j.Source}: decoder_sparse_step must be ≥ 1, found {step}");
        var mlpOnly = j.Ints("mlp_only_layers").ToHashSet();
        var sparse = Enumerable.Range(0, config.NumHiddenLayers).Select(i => !mlpOnly.Contains(i) && experts > 0 && (i + 1) % step == 0).ToArray();
        if (!sparse.Any(s => s)) return config;   // num_experts 0 or every layer dense: a plain Qwen3 decoder
        return config with
        {
            Moe = new MoeConfig(
                MoeLayout.Qwen3Moe, experts, j.Int("num_experts_per_tok", 8), j.Int("moe_intermediate_size", 768),
                j.Bool("norm_topk_prob", false), sparse, j.Bool("output_router_logits", false), j.Double("router_aux_loss_coef", 0.001), 0.0),
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["moe_intermediate_size"] = 32, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["head_dim"] = 16, ["num_experts"] = 8, ["num_experts_per_tok"] = 2, ["norm_topk_prob"] = true, ["decoder_sparse_step"] = 1, ["mlp_only_layers"] = new JsonArray(), ["max_position_embeddings"] = 256, ["sliding_window"] = null, ["use_sliding_window"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 1408, ["moe_intermediate_size"] = 256, ["num_hidden_layers"] = 6, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["head_dim"] = 64, ["num_experts"] = 16, ["num_experts_per_tok"] = 4, ["norm_topk_prob"] = true, ["decoder_sparse_step"] = 1, ["mlp_only_layers"] = new JsonArray(), ["max_position_embeddings"] = 2048, ["rope_theta"] = 1000000.0, ["sliding_window"] = null, ["use_sliding_window"] = false, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["qwen3-30b-a3b"] = Preset(new() { ["vocab_size"] = 151936, ["hidden_size"] = 2048, ["intermediate_size"] = 6144, ["moe_intermediate_size"] = 768, ["num_hidden_layers"] = 48, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 4, ["head_dim"] = 128, ["num_experts"] = 128, ["num_experts_per_tok"] = 8, ["norm_topk_prob"] = true, ["decoder_sparse_step"] = 1, ["mlp_only_layers"] = new JsonArray(), ["max_position_embeddings"] = 40960, ["rope_theta"] = 1000000.0, ["tie_word_embeddings"] = false, ["sliding_window"] = null, ["use_sliding_window"] = false, ["max_window_layers"] = 48, ["router_aux_loss_coef"] = 0.001, ["bos_token_id"] = 151643, ["eos_token_id"] = 151645 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("qwen3_moe", "Qwen3MoeForCausalLM", fields);
}
