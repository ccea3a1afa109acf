using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>Phi-3: fused qkv_proj and gate_up_proj, longrope scaling for the 128k variants, optional sliding window.</summary>
public sealed class Phi3 : IModelFamily
{
    private static readonly FamilyDefaults Defaults = new()
    {
        VocabSize = 32064, HiddenSize = 3072, IntermediateSize = 8192, Layers = 32, Heads = 32, MaxPositions = 4096,
        RmsNormEps = 1e-5, RopeTheta = 10000, Tie = false, HiddenAct = "silu",
    };

    public string ModelType => "phi3";
    public string Architecture => "Phi3ForCausalLM";

    public ModelConfig Parse(ConfigJson j)
    {
        var config = CommonConfig.Parse(j, ModelType, Defaults);
        int? window = j.IntOrNull("sliding_window");
        return config with
        {
            FusedProjections = true,
            QkvBias = false,
            OutputBias = false,
            SlidingWindow = window,
            SlidingLayers = Enumerable.Repeat(window is not null, config.NumHiddenLayers).ToArray(),
        };
    }

    public IReadOnlyDictionary<string, JsonObject> Presets { get; } = new Dictionary<string, JsonObject>
    {
        ["tiny"] = Preset(new() { ["vocab_size"] = 256, ["hidden_size"] = 64, ["intermediate_size"] = 128, ["num_hidden_layers"] = 2, ["num_attention_heads"] = 4, ["num_key_value_heads"] = 4, ["max_position_embeddings"] = 256, ["original_max_position_embeddings"] = 256, ["bos_token_id"] = 1, ["eos_token_id"] = 2 }),
        ["small"] = Preset(new() { ["vocab_size"] = 32064, ["hidden_size"] = 512, ["intermediate_size"] = 1408, ["num_hidden_layers"] = 8, ["num_attention_heads"] = 8, ["num_key_value_heads"] = 8, ["max_position_embeddings"] = 2048, ["original_max_position_embeddings"] = 2048, ["rms_norm_eps"] = 1e-5, ["bos_token_id"] = 1, ["eos_token_id"] = 32000, ["pad_token_id"] = 32000 }),
        ["phi-3-mini"] = Preset(new() { ["vocab_size"] = 32064, ["hidden_size"] = 3072, ["intermediate_size"] = 8192, ["num_hidden_layers"] = 32, ["num_attention_heads"] = 32, ["num_key_value_heads"] = 32, ["max_position_embeddings"] = 4096, ["original_max_position_embeddings"] = 4096, ["sliding_window"] = 2047, ["rms_norm_eps"] = 1e-5, ["bos_token_id"] = 1, ["eos_token_id"] = 32000, ["pad_token_id"] = 32000 }),
    };

    private static JsonObject Preset(JsonObject fields) => CommonConfig.Preset("phi3", "Phi3ForCausalLM", fields);
}

/// <summary>Phi-3 attention: one qkv_proj whose output rows are [q (nh·hs); k (nkv·hs); v (nkv·hs)].</summary>
public sealed class FusedQkvAttention : Attention
{
    private readonly nn.Module<Tensor, Tensor> qkv_proj, o_proj;

    public FusedQkvAttention(ModelConfig config, int layerIndex, ScalarType dtype) : base(config, layerIndex)
    {
        int q = config.NumAttentionHeads * config.HeadDim, kv = config.NumKeyValueHeads * config.HeadDim;
        qkv_proj = new LinearLayer(config.HiddenSize, q + 2 * kv, false, dtype);
        o_proj = new LinearLayer(q, config.HiddenSize, false, dtype);
        RegisterComponents();
    }

    protected override (Tensor Q, Tensor K, Tensor V) ProjectQkv(Tensor x)
    {
        long q = Config.NumAttentionHeads * Config.HeadDim, kv = Config.NumKeyValueHeads * Config.HeadDim;
        var parts = qkv_proj.call(x).split([q, kv, kv], -1);
        return (parts[0], parts[1], parts[2]);
    }

    protected override Tensor ProjectOutput(Tensor x) => o_proj.call(x);
}

/// <summary>Phi-3 MLP: gate_up_proj output is [gate; up]; down(up · act(gate)).</summary>
public sealed class FusedGatedMlp : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> gate_up_proj, down_proj;
    private readonly string act;

    public FusedGatedMlp(ModelConfig config, ScalarType dtype) : base(nameof(FusedGatedMlp))
    {
        gate_up_proj = new LinearLayer(config.HiddenSize, 2 * config.IntermediateSize, false, dtype);
        down_proj = new LinearLayer(config.IntermediateSize, config.HiddenSize, false, dtype);
        act = config.HiddenAct;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var halves = gate_up_proj.call(x).chunk(2, -1);
        return down_proj.call(halves[1] * Activations.Apply(act, halves[0])).MoveToOuterDisposeScope();
    }
}
