namespace SharpTune.Tokenization;

/// <summary>Labels beside token ids, in transformers' convention.</summary>
public static class TokenLabels
{
    /// <summary>The label of a token no loss is taken on (prompt, padding, another packed document's boundary).</summary>
    public const int IgnoreIndex = -100;
}
