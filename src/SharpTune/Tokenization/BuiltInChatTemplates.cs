using System.Reflection;

namespace SharpTune.Tokenization;

/// <summary>
/// The named chat templates `chat_template: NAME` selects. The names and texts are axolotl's (its ChatTemplate enum and
/// templates folder, stored as embedded resources under Tokenization/ChatTemplates/ with their source commit in
/// SOURCES.md), so an axolotl config renders the same text here. llama2, mistral and phi3 are SharpTune's own older
/// names (the templates those families ship on the Hub), kept so that existing configs keep working.
/// </summary>
public static class BuiltInChatTemplates
{
    public const string Jinja = "jinja";
    public const string TokenizerDefault = "tokenizer_default";
    public const string TokenizerDefaultFallbackPrefix = "tokenizer_default_fallback_";

    /// <summary>axolotl's template names, in the order of its ChatTemplate enum (jinja and tokenizer_default aside).</summary>
    public static IReadOnlyList<string> AxolotlNames { get; } =
    [
        "alpaca", "chatml", "mistral_v1", "mistral_v2v3", "mistral_v3_tekken", "mistral_v7_tekken", "gemma", "cohere",
        "llama3", "llama3_2_vision", "llama4", "phi_3", "phi_35", "deepseek_v2", "deepseek_v3", "jamba", "qwen_25", "qwen3",
        "qwen3_5", "falcon_h1", "nemotron_h", "exaone", "exaone4", "metharme", "pixtral", "llava", "qwen2_vl", "gemma3",
        "gemma3n", "gemma4", "command_a", "command_a_tool_use", "command_a_rag", "aya",
    ];

    /// <summary>SharpTune's own names that axolotl does not have.</summary>
    public static IReadOnlyList<string> ExtraNames { get; } = ["llama2", "mistral", "phi3"];

    public static IReadOnlyList<string> Names { get; } = [.. AxolotlNames, .. ExtraNames];

    /// <summary>Every value chat_template accepts, as listed in error messages and docs/config.md.</summary>
    public static string AllowedText =>
        $"{string.Join(", ", Names)}, {Jinja} (with chat_template_jinja), {TokenizerDefault}, {TokenizerDefaultFallbackPrefix}NAME (NAME one of the names before)";

    public static string ChatMl => Get("chatml");

    /// <summary>Null when <paramref name="value"/> is a valid chat_template value, else what is wrong with it.</summary>
    public static string? Problem(string value)
    {
        if (value is Jinja or TokenizerDefault || Names.Contains(value, StringComparer.Ordinal)) return null;
        if (value.StartsWith(TokenizerDefaultFallbackPrefix, StringComparison.Ordinal))
        {
            string fallback = value[TokenizerDefaultFallbackPrefix.Length..];
            return Names.Contains(fallback, StringComparer.Ordinal) ? null
                : $"'{value}' falls back to '{fallback}', which is not a chat template name; expected {TokenizerDefaultFallbackPrefix}NAME with NAME one of {string.Join(", ", Names)}";
        }
        return $"'{value}' is not a chat template name; expected one of {AllowedText}";
    }

    /// <summary>The template text for NAME; an unknown name fails with the list of known ones.</summary>
    public static string Get(string name)
    {
        if (!Names.Contains(name, StringComparer.Ordinal))
            throw new InvalidInputException($"chat_template: {Problem(name) ?? $"'{name}' is not a named template"}");
        string resource = $"SharpTune.Tokenization.ChatTemplates.{name}.jinja";
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"the build lacks the embedded chat template {resource}");
        using var reader = new StreamReader(stream, System.Text.Encoding.UTF8);
        return reader.ReadToEnd();
    }
}
