using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>How RMSNorm applies its weight: Llama multiplies by w, Gemma by (1 + w) with the weight stored around zero.</summary>
public enum NormStyle { Weight, OnePlusWeight }

/// <summary>rope_scaling from config.json. Type is one of default, linear, dynamic, llama3, yarn, longrope.</summary>
public sealed record RopeScaling(
    string Type,
    double Factor = 1.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int? OriginalMaxPositionEmbeddings = null,
    double? AttentionFactor = null,
    double BetaFast = 32,
    double BetaSlow = 1,
    double[]? ShortFactor = null,
    double[]? LongFactor = null);

/// <summary>Which checkpoint names a mixture-of-experts block uses: Mixtral's block_sparse_moe.experts.{e}.w1/w3/w2, or Qwen3-MoE's mlp.experts.{e}.gate/up/down_proj.</summary>
public enum MoeLayout { Mixtral, Qwen3Moe }

/// <summary>Mixture-of-experts MLP settings (Mixtral, Qwen3-MoE).</summary>
/// <param name="SparseLayers">Per layer: sparse MoE block (true) or the dense MLP of width intermediate_size (Qwen3-MoE's mlp_only_layers / decoder_sparse_step).</param>
/// <param name="NormTopKProb">Renormalise the top-k routing weights to sum 1 (Mixtral always; Qwen3-MoE's norm_topk_prob).</param>
/// <param name="OutputRouterLogits">config.json's output_router_logits: training adds RouterAuxLossCoef · load-balancing loss.</param>
/// <param name="JitterNoise">Mixtral's router_jitter_noise: in training, inputs are scaled by U(1 − j, 1 + j) before routing.</param>
public sealed record MoeConfig(
    MoeLayout Layout, int NumExperts, int TopK, int ExpertIntermediateSize, bool NormTopKProb, IReadOnlyList<bool> SparseLayers,
    bool OutputRouterLogits, double RouterAuxLossCoef, double JitterNoise);

/// <summary>
/// Everything in config.json that changes the math, for every supported family, with derived values computed once.
/// Families fill it from their own defaults (Llama.cs, Mistral.cs, ...); modules read only this record.
/// </summary>
public sealed record ModelConfig
{
    public required string ModelType { get; init; }
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int NumHiddenLayers { get; init; }
    public required int NumAttentionHeads { get; init; }
    public required int NumKeyValueHeads { get; init; }
    public required int HeadDim { get; init; }
    public required double RmsNormEps { get; init; }
    public required double RopeTheta { get; init; }
    public RopeScaling? RopeScaling { get; init; }
    public required int MaxPositionEmbeddings { get; init; }
    public bool TieWordEmbeddings { get; init; }
    /// <summary>Bias on q/k/v projections (Qwen2 always; Llama's attention_bias).</summary>
    public bool QkvBias { get; init; }
    /// <summary>Bias on o_proj (Llama's attention_bias covers it; Qwen2 has none).</summary>
    public bool OutputBias { get; init; }
    public bool MlpBias { get; init; }
    public required string HiddenAct { get; init; }
    public NormStyle NormStyle { get; init; } = NormStyle.Weight;
    /// <summary>Gemma multiplies input embeddings by sqrt(hidden_size) (rounded to the compute dtype).</summary>
    public bool ScaleEmbeddings { get; init; }
    /// <summary>Gemma2: extra norms after attention and around the MLP.</summary>
    public bool SandwichNorms { get; init; }
    /// <summary>Phi-3: qkv_proj and gate_up_proj are single fused matrices.</summary>
    public bool FusedProjections { get; init; }
    public double? AttnLogitSoftcapping { get; init; }
    public double? FinalLogitSoftcapping { get; init; }
    /// <summary>Multiplier on q·k: head_dim^-0.5, or query_pre_attn_scalar^-0.5 for Gemma2.</summary>
    public required double AttentionScale { get; init; }
    public int? SlidingWindow { get; init; }
    /// <summary>Per layer: does it use the sliding window? Length NumHiddenLayers.</summary>
    public required IReadOnlyList<bool> SlidingLayers { get; init; }
    /// <summary>Qwen3, Gemma 3: an RMSNorm (in NormStyle) over each head's head_dim channels of q and k, before RoPE.</summary>
    public bool QkNorm { get; init; }
    /// <summary>Gemma 3: RoPE base of the sliding layers (rope_local_base_freq), which take no rope_scaling; null = rope_theta everywhere.</summary>
    public double? LocalRopeTheta { get; init; }
    /// <summary>Mixture-of-experts MLPs; null for dense models.</summary>
    public MoeConfig? Moe { get; init; }
    public double PartialRotaryFactor { get; init; } = 1.0;
    public double InitializerRange { get; init; } = 0.02;
    public int? BosTokenId { get; init; }
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];
    public int? PadTokenId { get; init; }
    /// <summary>The config.json it came from, written back unchanged on save.</summary>
    public required JsonObject Json { get; init; }

    public int KvGroups => NumAttentionHeads / NumKeyValueHeads;
    public int RotaryDim => (int)(HeadDim * PartialRotaryFactor);

    /// <summary>Checks the relations between fields that the modules rely on.</summary>
    public ModelConfig Validated(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok) throw new InvalidInputException($"{source}: {what}");
        }
        Require(VocabSize > 0, $"vocab_size must be ≥ 1, found {VocabSize}");
        Require(HiddenSize > 0 && IntermediateSize > 0 && NumHiddenLayers > 0, "hidden_size, intermediate_size and num_hidden_layers must be ≥ 1");
        Require(NumAttentionHeads > 0 && NumKeyValueHeads > 0, "num_attention_heads and num_key_value_heads must be ≥ 1");
        Require(NumAttentionHeads % NumKeyValueHeads == 0, $"num_attention_heads ({NumAttentionHeads}) must be a multiple of num_key_value_heads ({NumKeyValueHeads})");
        Require(HeadDim > 0 && HeadDim % 2 == 0, $"head_dim must be even and ≥ 2, found {HeadDim}");
        Require(RotaryDim % 2 == 0 && RotaryDim > 0, $"partial_rotary_factor gives an odd rotary dimension {RotaryDim}");
        Require(SlidingLayers.Count == NumHiddenLayers, "sliding layer list does not match num_hidden_layers");
        Require(SlidingWindow is null or > 0, $"sliding_window must be ≥ 1, found {SlidingWindow}");
        Require(!(QkNorm && FusedProjections), "per-head q/k norms need separate q/k/v projections");
        if (Moe is { } moe)
        {
            Require(moe.NumExperts > 0, $"the number of experts must be ≥ 1, found {moe.NumExperts}");
            Require(moe.TopK >= 1 && moe.TopK <= moe.NumExperts, $"num_experts_per_tok must be between 1 and the number of experts ({moe.NumExperts}), found {moe.TopK}");
            Require(moe.ExpertIntermediateSize > 0, $"the experts' intermediate size must be ≥ 1, found {moe.ExpertIntermediateSize}");
            Require(moe.SparseLayers.Count == NumHiddenLayers, "sparse layer list does not match num_hidden_layers");
            Require(moe.JitterNoise is >= 0 and < 1, $"router_jitter_noise must be in [0, 1), found {moe.JitterNoise}");
            Require(!FusedProjections, "mixture-of-experts blocks need separate projections");
        }
        Require(Activations.IsKnown(HiddenAct), $"hidden activation '{HiddenAct}' is not supported; supported: {string.Join(", ", Activations.Names)}");
        return this;
    }
}
