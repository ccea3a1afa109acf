using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>Gemma: embeddings scaled by sqrt(hidden), (1 + w) RMSNorm, GELU (tanh) MLP, tied embeddings, head_dim 256.</summary>
public sealed class Gemma : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 256000, HiddenSize = 3072, IntermediateSize = 24576, Layers = 28, Heads = 16, KvHeads = 16,
        HeadDim = 256, MaxPositions = 8192, RmsNormEps = 1e-6, RopeTheta = 10000, Tie = true, HiddenAct = "gelu_pytorch_tanh",
    };

    public string ModelType => "gemma";
    public string Architecture => "GemmaForCausalLM";

    public ModelConfig Parse(ConfigJson j) => ParseGemmaCommon(j, ModelType, Defaults);

    /// <summary>What Gemma and Gemma2 share. transformers uses hidden_activation (default gelu_pytorch_tanh), not hidden_act.</summary>
    internal static ModelConfig ParseGemmaCommon(ConfigJson j, string modelType, FamilyDefaults defaults)
    {
        bool attentionBias = j.Bool("attention_bias", false);
        return CommonConfig.Parse(j, modelType, defaults) with
        {
            HiddenAct = j.Has("hidden_activation") ? j.String("hidden_activation", "gelu_pytorch_tanh") : "gelu_pytorch_tanh",
            NormStyle = NormStyle.OnePlusWeight,
            ScaleEmbeddings = true,
            QkvBias = attentionBias,
            OutputBias = attentionBias,
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 1, ["head_dim"] = 16, ["max_position_embeddings"] = 256, ["hidden_activation"] = "gelu_pytorch_tanh", ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["pad_token_id"] = 0 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32000, ["hidden_size"] = 512, ["intermediate_size"] = 2048, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 1, ["head_dim"] = 64, ["max_position_embeddings"] = 2048, ["hidden_activation"] = "gelu_pytorch_tanh", ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["pad_token_id"] = 0 }),
        ["gemma-2b"] = Preset(new() { ["vocab_size"] = 256000, ["hidden_size"] = 2048, ["intermediate_size"] = 16384, ["num_hidden_layers"] = 18, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 1, ["head_dim"] = 256, ["max_position_embeddings"] = 8192, ["hidden_activation"] = "gelu_pytorch_tanh", ["bos_token_id"] = 2, ["eos_token_id"] = 1, ["pad_token_id"] = 0 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("gemma", "GemmaForCausalLM", fields);
}
