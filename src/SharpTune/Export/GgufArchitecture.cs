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
        // The mixture-of-experts router (Mixtral, Qwen3-MoE); the experts themselves are stacked (ExpertTensor).
        ["block_sparse_moe.gate.weight"] = "ffn_gate_inp.weight",
        ["mlp.gate.weight"] = "ffn_gate_inp.weight",
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

    /// <summary>
    /// For one expert's projection (Mixtral's block_sparse_moe.experts.E.w1/w3/w2, Qwen3-MoE's mlp.experts.E.gate/up/down_proj):
    /// the stacked GGUF tensor it belongs to (blk.N.ffn_gate_exps / ffn_up_exps / ffn_down_exps, one 3-D tensor per layer
    /// with the experts as the outermost dimension, as convert_hf_to_gguf writes them) and the expert index; null otherwise.
    /// </summary>
    public static (string Name, int Expert)? ExpertTensor(string hfName)
    {
        var match = ExpertKey().Match(hfName);
        if (!match.Success) return null;
        var kind = match.Groups[3].Value switch
        {
            "w1" or "gate_proj" => "ffn_gate_exps",
            "w3" or "up_proj" => "ffn_up_exps",
            _ => "ffn_down_exps",
        };
        return ($"blk.{match.Groups[1].Value}.{kind}.weight", int.Parse(match.Groups[2].Value));
    }

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(.+)$")]
    private static partial Regex LayerKey();

    [GeneratedRegex(@"^model\.layers\.(\d+)\.(?:block_sparse_moe|mlp)\.experts\.(\d+)\.(w1|w2|w3|gate_proj|up_proj|down_proj)\.weight$")]
    private static partial Regex ExpertKey();
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
        // Qwen3: Qwen2's layout without biases plus per-head q/k RMSNorms (attn_q_norm / attn_k_norm); NEOX rope.
        new("qwen3", "qwen3", RopeScalings: ["linear", "yarn"], Caveat: SlidingWindowIgnored),
        // convert_hf_to_gguf writes Mixtral as llama with stacked experts; llama.cpp's llama graph routes softmax → top-k → renormalise.
        new("mixtral", "llama", PermuteQk: true, RopeScalings: ["linear", "yarn"], Extra: MoeMetadata, Caveat: SlidingWindowIgnored),
        new("qwen3_moe", "qwen3moe", RopeScalings: ["linear", "yarn"], Extra: MoeMetadata, Caveat: SlidingWindowIgnored),
        new("gemma3_text", "gemma3", NormPlusOne: true,
            LayerRenames: new Dictionary<string, string>
            {
                ["post_attention_layernorm.weight"] = "post_attention_norm.weight",
                ["pre_feedforward_layernorm.weight"] = "ffn_norm.weight",
                ["post_feedforward_layernorm.weight"] = "post_ffw_norm.weight",
            },
            Extra: Gemma3Metadata, RopeScalings: ["linear"],
            // llama.cpp ignores query_pre_attn_scalar here too: head_dim^-0.5, or (hidden/heads)^-0.5 for the 62-layer 27B.
            LlamaCppAttentionScale: c => c.NumHiddenLayers == 62 ? 1.0 / Math.Sqrt(c.HiddenSize / c.NumAttentionHeads) : HeadDimScale(c)),
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

    /// <summary>
    /// Mixtral / Qwen3-MoE: llama.cpp's llama and qwen3moe graphs put a sparse block in every layer and always renormalise
    /// the top-k weights, so configs with dense layers or without renormalisation are refused rather than exported wrong.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, GgufValue>> MoeMetadata(ModelConfig c)
    {
        var moe = c.Moe ?? throw new InvalidInputException($"config.json: model_type {c.ModelType} without experts cannot be exported as a mixture of experts");
        if (!moe.NormTopKProb)
            throw new InvalidInputException("config.json: norm_topk_prob false cannot be exported to GGUF (llama.cpp always renormalises the top-k routing weights)");
        if (moe.SparseLayers.Any(sparse => !sparse))
            throw new InvalidInputException("config.json: mlp_only_layers / decoder_sparse_step leave dense layers, which llama.cpp's qwen3moe graph does not have; export needs every layer sparse");
        yield return Kv("expert_count", GgufValue.U32(moe.NumExperts));
        yield return Kv("expert_used_count", GgufValue.U32(moe.TopK));
        if (moe.Layout == MoeLayout.Qwen3Moe) yield return Kv("expert_feed_forward_length", GgufValue.U32(moe.ExpertIntermediateSize));
    }

    /// <summary>
    /// Gemma 3 in llama.cpp: every sixth layer global (set_swa_pattern(6)), sliding layers on RoPE base 10000 without
    /// scaling, no attention soft-cap; other layouts are refused with the key that differs.
    /// </summary>
    private static IEnumerable<KeyValuePair<string, GgufValue>> Gemma3Metadata(ModelConfig c)
    {
        var expected = Enumerable.Range(0, c.NumHiddenLayers).Select(i => (i + 1) % 6 != 0).ToArray();
        bool windowed = c.SlidingWindow is { } w && w > 0;
        if (!c.SlidingLayers.SequenceEqual(expected))
            throw new InvalidInputException($"config.json: sliding_window_pattern / layer_types give local layers [{string.Join(",", c.SlidingLayers.Select(l => l ? "L" : "G"))}]; llama.cpp's gemma3 makes every 6th layer global (pattern 6) and reads no other pattern");
        if (c.LocalRopeTheta is { } local && local != 10000)
            throw new InvalidInputException($"config.json: rope_local_base_freq {local} cannot be exported; llama.cpp's gemma3 rotates sliding layers with base 10000");
        if (c.AttnLogitSoftcapping is not null)
            throw new InvalidInputException("config.json: attn_logit_softcapping cannot be exported for gemma3 (llama.cpp's gemma3 graph has no attention soft-cap)");
        if (c.FinalLogitSoftcapping is { } finalCap) yield return Kv("final_logit_softcapping", GgufValue.F32(finalCap));
        // llama.cpp's gemma3 loader requires the key; a config without a window is one window as long as the context.
        yield return Kv("attention.sliding_window", GgufValue.U32(windowed ? c.SlidingWindow!.Value : c.MaxPositionEmbeddings));
    }

    private static IEnumerable<KeyValuePair<string, GgufValue>> Phi3Metadata(ModelConfig c)
    {
        int original = c.RopeScaling?.OriginalMaxPositionEmbeddings ?? c.Json["original_max_position_embeddings"]?.GetValue<int>() ?? c.MaxPositionEmbeddings;
        yield return Kv("rope.scaling.original_context_length", GgufValue.U32(original));
        yield return Kv("attention.sliding_window", GgufValue.U32(c.SlidingWindow ?? 0));
    }
}
