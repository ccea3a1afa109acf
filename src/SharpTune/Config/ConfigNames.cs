namespace SharpTune.Config;

/// <summary>The one mapping between C# names and config spellings: properties ↔ keys, enum members → values.</summary>
internal static class ConfigNames
{
    /// <summary>AdamwTorchFused → adamw_torch_fused, Bnb4bitQuantType → bnb_4bit_quant_type, AdamBeta1 → adam_beta1.</summary>
    public static string ToSnake(string pascal)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            // Adamw8bit → adamw_8bit, AdamwTorch4bit → adamw_torch_4bit (bit widths are words of their own; Nf4 stays nf4).
            bool bitWidth = char.IsDigit(c) && i > 0 && char.IsLetter(pascal[i - 1]) && pascal[i..].TrimStart("0123456789".ToCharArray()).StartsWith("bit");
            if ((char.IsUpper(c) && i > 0) || bitWidth) sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>lora_r → LoraR, load_in_4bit → LoadIn4bit, adam_beta1 → AdamBeta1.</summary>
    public static string ToPascal(string snake) =>
        string.Concat(snake.Split('_', StringSplitOptions.RemoveEmptyEntries).Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
}
