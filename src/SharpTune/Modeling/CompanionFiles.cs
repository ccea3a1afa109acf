namespace SharpTune.Modeling;

/// <summary>The files besides weights and config.json that make a model folder usable on its own: tokenizer and generation config.</summary>
public static class CompanionFiles
{
    private static readonly string[] Names = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "generation_config.json"];

    /// <summary>Copies each of them that <paramref name="modelDir"/> has and <paramref name="target"/> lacks (existing files kept).</summary>
    public static void CopyMissing(string modelDir, string target)
    {
        foreach (var name in Names)
        {
            var source = Path.Combine(modelDir, name);
            if (File.Exists(source) && !File.Exists(Path.Combine(target, name))) File.Copy(source, Path.Combine(target, name));
        }
    }
}
