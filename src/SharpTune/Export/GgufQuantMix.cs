namespace SharpTune.Export;

/// <summary>The --outtype values and the ggml type each tensor gets under them.</summary>
public enum GgufOutType { F32, F16, BF16, Q8_0, Q4_0, Q4_K_M }

/// <summary>
/// Per-tensor types. f32/f16/bf16/q8_0 follow convert_hf_to_gguf.py (1-D tensors and norms stay f32; q8_0 falls back
/// to f16 for rows not a multiple of 32). q4_0 and q4_k_m follow llama-quantize's llama_tensor_get_type without an
/// importance matrix: the output matrix (or the tied embedding) gets q6_K, q4_k_m gives attn_v and ffn_down q6_K on the
/// layers use_more_bits picks and fused attn_qkv q5_K, and rows that do not divide into blocks take ggml's fallbacks
/// (q4_K → q5_0, q5_K → q5_1, q6_K → q8_0, then f16).
/// </summary>
public static class GgufQuantMix
{
    public static GgufOutType Parse(string value) => value switch
    {
        "f32" => GgufOutType.F32,
        "f16" => GgufOutType.F16,
        "bf16" => GgufOutType.BF16,
        "q8_0" => GgufOutType.Q8_0,
        "q4_0" => GgufOutType.Q4_0,
        "q4_k_m" => GgufOutType.Q4_K_M,
        _ => throw new InvalidInputException($"--outtype: '{value}' is not supported; allowed: f32, f16, bf16, q8_0, q4_0, q4_k_m"),
    };

    /// <summary>general.file_type (llama.h enum llama_ftype).</summary>
    public static uint FileType(GgufOutType outType) => outType switch
    {
        GgufOutType.F32 => 0,
        GgufOutType.F16 => 1,
        GgufOutType.Q4_0 => 2,
        GgufOutType.Q8_0 => 7,
        GgufOutType.Q4_K_M => 15,
        GgufOutType.BF16 => 32,
        _ => throw new ArgumentOutOfRangeException(nameof(outType)),
    };

    /// <summary>
    /// The type of tensor <paramref name="name"/> of <paramref name="shape"/>. <paramref name="layer"/> and
    /// <paramref name="layers"/> place block tensors for use_more_bits; <paramref name="hasOutput"/> says whether
    /// output.weight exists (without it the token embedding doubles as the output and is typed as one).
    /// </summary>
    /// <paramref name="experts"/> is the mixture-of-experts count (0: dense): the router stays f32 (convert_hf_to_gguf and
    /// llama-quantize never quantize ffn_gate_inp), and with 8 experts llama-quantize gives attn_k / attn_v q8_0 and, under
    /// q4_k_m, attn_output q5_K.
    public static GgmlType TypeFor(GgufOutType outType, string name, long[] shape, int layer, int layers, bool hasOutput, int experts = 0)
    {
        if (shape.Length < 2 || name.EndsWith("_norm.weight", StringComparison.Ordinal) || outType == GgufOutType.F32) return GgmlType.F32;
        if (name.EndsWith("ffn_gate_inp.weight", StringComparison.Ordinal)) return GgmlType.F32;
        long columns = shape[^1];
        switch (outType)
        {
            case GgufOutType.F16: return GgmlType.F16;
            case GgufOutType.BF16: return GgmlType.BF16;
            case GgufOutType.Q8_0: return columns % 32 == 0 ? GgmlType.Q8_0 : GgmlType.F16;
        }
        var defaultType = outType == GgufOutType.Q4_0 ? GgmlType.Q4_0 : GgmlType.Q4_K;
        var type = defaultType;
        bool isOutput = name == "output.weight" || (!hasOutput && name == "token_embd.weight");
        if (isOutput)
            return columns % GgmlTypes.BlockSize(defaultType) != 0 ? FitRow(GgmlType.Q8_0, columns) : FitRow(GgmlType.Q6_K, columns);
        if (experts == 8 && (name.Contains("attn_v.weight", StringComparison.Ordinal) || name.Contains("attn_k.weight", StringComparison.Ordinal)))
            return FitRow(GgmlType.Q8_0, columns);
        if (outType == GgufOutType.Q4_K_M && experts == 8 && name.Contains("attn_output.weight", StringComparison.Ordinal))
            return FitRow(GgmlType.Q5_K, columns);
        if (outType == GgufOutType.Q4_K_M)
        {
            if (name.Contains("attn_v.weight", StringComparison.Ordinal) && UseMoreBits(layer, layers)) type = GgmlType.Q6_K;
            else if (name.Contains("ffn_down", StringComparison.Ordinal) && UseMoreBits(layer, layers)) type = GgmlType.Q6_K;
            else if (name.Contains("attn_qkv.weight", StringComparison.Ordinal)) type = GgmlType.Q5_K;
        }
        return FitRow(type, columns);
    }

    /// <summary>llama.cpp's use_more_bits: the first and last eighth of the layers and every third one between.</summary>
    public static bool UseMoreBits(int layer, int layers) => layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    /// <summary>ggml's fallback when a row does not divide into the type's blocks.</summary>
    private static GgmlType FitRow(GgmlType type, long columns)
    {
        if (columns % GgmlTypes.BlockSize(type) == 0) return type;
        var fallback = type switch
        {
            GgmlType.Q4_K => GgmlType.Q5_0,
            GgmlType.Q5_K => GgmlType.Q5_1,
            GgmlType.Q6_K => GgmlType.Q8_0,
            _ => type,
        };
        return columns % GgmlTypes.BlockSize(fallback) == 0 ? fallback : GgmlType.F16;
    }
}
