using System.Text.RegularExpressions;
using SharpTune.Modeling;

namespace SharpTune.Export;

/// <summary>
/// How one model_type becomes a llama.cpp architecture: the GGUF architecture name, the tensor renames beyond the common
/// ones, the weight transforms convert_hf_to_gguf.py applies, and the metadata llama.cpp reads for it. Adding a family is
/// one entry in <see cref="GgufArchitectures.All"/>.
/// </summary>
public sealed partial record GgufArchitecture(
    string ModelType,
    string Name,
    /// <summary>llama.cpp's rope for this architecture pairs adjacent channels (LLAMA_ROPE_TYPE_NORM): q/k rows are
    /// permuted from HF's rotate-half order, as convert_hf_to_gguf's LlamaModel.permute does.</summary>
    bool PermuteQk = false,
    /// <summary>HF Gemma stores RMSNorm weights around zero and multiplies by (1 + w); llama.cpp multiplies by w.</summary>
    bool NormPlusOne = false,
    /// <summary>Layer-local renames (HF suffix after model.layers.N. → GGUF suffix after blk.N.) that differ from the common table.</summary>
    IReadOnlyDictionary<string, string>? LayerRenames = null,
    /// <summary>Extra metadata of this architecture (soft-caps, sliding window, ...), keys without the "{arch}." prefix.</summary>
    Func<ModelConfig, IEnumerable<KeyValuePair<string, GgufValue>>>? Extra = null,
    /// <summary>The q·k scale llama.cpp applies for this architecture; SharpTune folds any difference into attn_q.</summary>
    Func<ModelConfig, double>? LlamaCppAttentionScale = null,
    /// <summary>rope_scaling types llama.cpp implements for this architecture (others are refused).</summary>
    IReadOnlyList<string>? RopeScalings = null,
    /// <summary>A note printed at export when llama.cpp computes something differently for this config (null: none).</summary>
    Func<ModelConfig, string?>? Caveat = null)
{
    /// <summary>HF layer-local names shared by every decoder family (llama.cpp's tensor names, gguf-py constants.py).</summary>
    public static readonly IReadOnlyDictionary<string, string> CommonLayerRenames = new Dictionary<string, string>
    {
        ["input_layernorm.weight"] = "attn_norm.weight",
        ["self_attn.q_proj.weight"] = "attn_q.weight",
        ["self_attn.q_proj.bias"] = "attn_q.bias",
        ["self_attn.k_proj.weight"] = "attn_k.weight",
        ["self_attn.k_proj.bias"] = "attn_k.bias",
        ["self_attn.v_proj.weight"] = "attn_v.weight",
        ["self_attn.v_proj.bias"] = "attn_v.bias",
        ["self_attn.o_proj.weight"] = "attn_output.weight",
        ["self_attn.o_proj.bias"] = "attn_output.bias",
        ["self_attn.qkv_proj.weight"] = "attn_qkv.weight",
        ["self_attn.q_norm.weight"] = "attn_q_norm.weight",
        ["self_attn.k_norm.weight"] = "attn_k_norm.weight",
        ["post_attention_layernorm.weight"] = "ffn_norm.weight",
        ["mlp.gate_proj.weight"] = "ffn_gate.weight",
        ["mlp.up_proj.weight"] = "ffn_up.weight",
        ["mlp.down_proj.weight"] = "ffn_down.weight",
        ["mlp.gate_proj.bias"] = "ffn_gate.bias",
        ["mlp.up_proj.bias"] = "ffn_up.bias",
        ["mlp.down_proj.bias"] = "ffn_down.bias",
        // Phi-3 keeps [gate; up] fused; llama.cpp's phi3 graph splits ffn_up in that order (swiglu on the halves).
        ["mlp.gate_up_proj.weight"] = "ffn_up.weight",
    };

    /// <summary>The GGUF name of an HF checkpoint key, or null when the key has no GGUF counterpart.</summary>
    public string? TensorName(string hfName)
    {
        switch (hfName)
        {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
        }
        var match = LayerKey().Match(hfName);
        if (!match.Success) return null;
        var local = match.Groups[2].Value;
        var renamed = LayerRenames?.GetValueOrDefault(local) ?? CommonLayerRenames.GetValueOrDefault(local);
        return renamed is null ? null : $"blk.{match.Groups[1].Value}.{renamed}";
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LayerKey();
}

/// <summary>The per-architecture table.</summary>
public static class GgufArchitectures
{
    private static double HeadDimScale(ModelConfig c) => 1.0 / Math.Sqrt(c.HeadDim);

    public static readonly IReadOnlyList<GgufArchitecture> All =
    [
        new("llama", "llama", PermuteQk: true, RopeScalings: ["linear", "llama3", "yarn"]),
        // convert_hf_to_gguf maps MistralForCausalLM to the llama architecture; llama.cpp's llama graph has no sliding window.
        new("mistral", "llama", PermuteQk: true, RopeScalings: ["linear", "yarn"], Caveat: SlidingWindowIgnored),
        new("qwen2", "qwen2", RopeScalings: ["linear", "yarn"]),
        new("gemma", "gemma", NormPlusOne: true),
        new("gemma2", "gemma2", NormPlusOne: true,
            LayerRenames: new Dictionary<string, string>
            {
                ["post_attention_layernorm.weight"] = "post_attention_norm.weight",
                ["pre_feedforward_layernorm.weight"] = "ffn_norm.weight",
                ["post_feedforward_layernorm.weight"] = "post_ffw_norm.weight",
            },
            Extra: Gemma2Metadata,
            // llama.cpp ignores query_pre_attn_scalar: it scales by head_dim^-0.5, or (hidden/heads)^-0.5 for the 46-layer 27B.
            LlamaCppAttentionScale: c => c.NumHiddenLayers == 46 ? 1.0 / Math.Sqrt(c.HiddenSize / c.NumAttentionHeads) : HeadDimScale(c)),
        new("phi3", "phi3", RopeScalings: ["longrope"], Extra: Phi3Metadata, Caveat: SlidingWindowIgnored),
    ];

    public static GgufArchitecture For(ModelConfig config) =>
        All.FirstOrDefault(a => a.ModelType == config.ModelType)
        ?? throw new InvalidInputException($"model_type '{config.ModelType}' cannot be exported to GGUF yet; supported: {string.Join(", ", All.Select(a => a.ModelType))}");

    public static double AttentionScaleOf(GgufArchitecture arch, ModelConfig config) => (arch.LlamaCppAttentionScale ?? HeadDimScale)(config);

    private static string? SlidingWindowIgnored(ModelConfig c) =>
        c.SlidingWindow is { } w && w < c.MaxPositionEmbeddings
            ? $"sliding_window {w}: llama.cpp's graph for {c.ModelType} attends to the whole context, so outputs differ from SharpTune/transformers once a sequence exceeds {w} tokens"
            : null;

    private static KeyValuePair<string, GgufValue> Kv(string key, GgufValue value) => KeyValuePair.Create(key, value);

    private static IEnumerable<KeyValuePair<string, GgufValue>> Gemma2Metadata(ModelConfig c)
    {
        // llama.cpp's gemma2 graph always soft-caps; a config that turns a cap off cannot be expressed.
        if (c.AttnLogitSoftcapping is not { } attnCap || c.FinalLogitSoftcapping is not { } finalCap)
            throw new InvalidInputException("config.json: attn_logit_softcapping and final_logit_softcapping must be set for a gemma2 GGUF (llama.cpp's gemma2 always applies both)");
        yield return Kv("attn_logit_softcapping", GgufValue.F32(attnCap));
        yield return Kv("final_logit_softcapping", GgufValue.F32(finalCap));
        // No window (sliding_window: null) is a window as long as the context.
        yield return Kv("attention.sliding_window", GgufValue.U32(c.SlidingWindow ?? c.MaxPositionEmbeddings));
    }

    private static IEnumerable<KeyValuePair<string, GgufValue>> Phi3Metadata(ModelConfig c)
    {
        int original = c.RopeScaling?.OriginalMaxPositionEmbeddings ?? c.Json["original_max_position_embeddings"]?.GetValue<int>() ?? c.MaxPositionEmbeddings;
        yield return Kv("rope.scaling.original_context_length", GgufValue.U32(original));
        yield return Kv("attention.sliding_window", GgufValue.U32(c.SlidingWindow ?? 0));
    }
}
