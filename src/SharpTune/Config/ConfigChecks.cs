using System.Text.RegularExpressions;

namespace SharpTune.Config;

/// <summary>
/// Checks of what a loaded config points at on disk, for `sharptune validate` and before training.
/// Later pieces (tokenizer, datasets) add their checks here so that validate keeps catching problems early.
/// </summary>
public static class ConfigChecks
{
    private static readonly Regex RepoId = new(@"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$");

    /// <summary>Throws InvalidInputException naming the key and path of the first missing or malformed local file/folder.</summary>
    public static void CheckFiles(TrainConfig config, string source)
    {
        CheckFolder(source, "base_model", config.BaseModel, "config.json");
        CheckFolder(source, "base_model_config", config.BaseModelConfig, "config.json");
        CheckFolder(source, "tokenizer_config", config.TokenizerConfig, null);
        CheckFolder(source, "lora_model_dir", config.LoraModelDir, "adapter_config.json");
        if (config.ResumeFromCheckpoint is { } resume && !Directory.Exists(resume))
            throw new InvalidInputException($"{source}: resume_from_checkpoint: {resume} not found; expected a checkpoint folder");
        if (config.ChatTemplate == "jinja" && config.ChatTemplateJinja is { } jinja && !jinja.Contains('\n') && !jinja.Contains("{%")
            && !File.Exists(jinja))
            throw new InvalidInputException($"{source}: chat_template_jinja: {jinja} is neither a template nor an existing file");
    }

    /// <summary>Whether <paramref name="value"/> has the form of a Hugging Face repo id (owner/name or name).</summary>
    public static bool LooksLikeRepoId(string value) => RepoId.IsMatch(value) && !value.Contains("--") && !value.Contains("..");

    /// <summary>Whether a model reference is a folder on this machine (otherwise a Hugging Face repo id).</summary>
    public static bool IsLocalFolder(string reference) => Directory.Exists(reference);

    private static void CheckFolder(string source, string key, string? value, string? requiredFile)
    {
        if (value == null) return;
        if (Directory.Exists(value))
        {
            if (requiredFile != null && !File.Exists(Path.Combine(value, requiredFile)))
                throw new InvalidInputException($"{source}: {key}: folder {value} has no {requiredFile}; expected a folder in Hugging Face layout");
            return;
        }
        if (File.Exists(value))
            throw new InvalidInputException($"{source}: {key}: {value} is a file; expected a folder{(requiredFile != null ? $" holding {requiredFile}" : "")}");
        // Anything that cannot be a repo id ("./x", "/x", "a/b/c") was meant as a local folder.
        if (!RepoId.IsMatch(value))
            throw new InvalidInputException($"{source}: {key}: folder {value} not found; expected a local folder or a Hugging Face repo id (owner/name)");
    }
}
