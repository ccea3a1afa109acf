using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>
/// Gemma2: Gemma plus sandwich norms, attention and final logit soft-capping, query_pre_attn_scalar^-0.5 scaling, and
/// a sliding window on every even layer.
/// </summary>
public sealed class Gemma2 : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 256000, HiddenSize = 3072, IntermediateSize = 24576, Layers = 28, Heads = 16, KvHeads = 16,
        HeadDim = 256, MaxPositions = 8192, RmsNormEps = 1e-6, RopeTheta = 10000, Tie = true, HiddenAct = "gelu_pytorch_tanh",
    };

    public string ModelType => "gemma2";
    public string Architecture => "Gemma2ForCausalLM";

    public ModelConfig Parse(ConfigJson j)
    {
        var config = Gemma.ParseGemmaCommon(j, ModelType, Defaults);
        int? window = j.Contains("sliding_window") ? j.IntOrNull("sliding_window") : 4096;
        return config with
        {
            SandwichNorms = true,
            AttentionScale = 1.0 / Math.Sqrt(j.Double("query_pre_attn_scalar", 224)),
            AttnLogitSoftcapping = j.Contains("attn_logit_softcapping") ? j.DoubleOrNull("attn_logit_softcapping") : 50.0,
            FinalLogitSoftcapping = j.Contains("final_logit_softcapping") ? j.DoubleOrNull("final_logit_softcapping") : 30.0,
            SlidingWindow = window,
            SlidingLayers = Enumerable.Range(0, config.NumHiddenLayers).Select(i => window is not null && i % 2 == 0).ToArray(),
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 2, ["head_dim"] = 16, ["max_position_embeddings"] = 256, ["query_pre_attn_scalar"] = 16, ["sliding_window"] = 4, ["attn_logit_softcapping"] = 50.0, ["final_logit_softcapping"] = 30.0, ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["pad_token_id"] = 0 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 2048, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["head_dim"] = 64, ["max_position_embeddings"] = 2048, ["query_pre_attn_scalar"] = 64, ["sliding_window"] = 512, ["attn_logit_softcapping"] = 50.0, ["final_logit_softcapping"] = 30.0, ["hidden_activation"] = "gelu_pytorch_tanh", ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["pad_token_id"] = 0 }),
        ["gemma-2-2b"] = Preset(new() { ["vocab_size"] = 256000, ["hidden_size"] = 2304, ["intermediate_size"] = 9216, ["num_hidden_layers"] = 26, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 4, ["head_dim"] = 256, ["max_position_embeddings"] = 8192, ["query_pre_attn_scalar"] = 256, ["sliding_window"] = 4096, ["attn_logit_softcapping"] = 50.0, ["final_logit_softcapping"] = 30.0, ["hidden_activation"] = "gelu_pytorch_tanh", ["bos_token_id"] = 2, ["eos_token_id"] = new JsonArray(1, 107), ["pad_token_id"] = 0 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("gemma2", "Gemma2ForCausalLM", fields);
}
