using System.Text.RegularExpressions;

namespace SharpTune.Config;

/// <summary>
/// Checks of what a loaded config points at on disk, for `sharptune validate` and before training.
/// Later pieces (tokenizer, datasets) add their checks here so that validate keeps catching problems early.
/// </summary>
public static class ConfigChecks
{
    private static readonly Regex RepoId = new(@"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$");

    /// <summary>Throws <see cref="ConfigProblemsException"/> naming the key and path of every missing or malformed local file/folder.</summary>
    public static void CheckFiles(TrainConfig config, string source)
    {
        var problems = new List<string>();
        void Check(Action check)
        {
            try { check(); }
            catch (InvalidInputException e) { problems.Add(e.Message); }
        }
        Check(() => CheckFolder(source, "base_model", config.BaseModel, "config.json"));
        Check(() => CheckFolder(source, "base_model_config", config.BaseModelConfig, "config.json"));
        Check(() => CheckFolder(source, "tokenizer_config", config.TokenizerConfig, null));
        Check(() => CheckFolder(source, "lora_model_dir", config.LoraModelDir, "adapter_config.json"));
        Check(() => CheckWritableFolder(source, "output_dir", config.OutputDir));
        foreach (var (key, folder) in new[] { ("base_model", config.BaseModel), ("lora_model_dir", config.LoraModelDir), ("merge_into_original", config.MergeIntoOriginal) })
            if (folder is not null && Directory.Exists(folder) && SameFolder(folder, config.OutputDir))
                problems.Add($"{source}: output_dir: {config.OutputDir} is the {key} folder; the run would overwrite what it starts from: choose another output_dir");
        Check(() => CheckWritableFolder(source, "dataset_prepared_path", config.DatasetPreparedPath));
        if (config.ResumeFromCheckpoint is { } resume && !Directory.Exists(resume))
            problems.Add($"{source}: resume_from_checkpoint: {resume} not found; expected a checkpoint folder");
        if (config.ChatTemplate == "jinja" && config.ChatTemplateJinja is { } jinja && !jinja.Contains('\n') && !jinja.Contains("{%")
            && !File.Exists(jinja))
            problems.Add($"{source}: chat_template_jinja: {jinja} is neither a template nor an existing file");
        if (problems.Count > 0) throw new ConfigProblemsException(problems);
    }

    /// <summary>Whether <paramref name="value"/> has the form of a Hugging Face repo id (owner/name or name).</summary>
    public static bool LooksLikeRepoId(string value) => RepoId.IsMatch(value) && !value.Contains("--") && !value.Contains("..");

    /// <summary>Whether a model reference is a folder on this machine (otherwise a Hugging Face repo id).</summary>
    public static bool IsLocalFolder(string reference) => Directory.Exists(reference);

    private static bool SameFolder(string a, string b) =>
        string.Equals(Path.TrimEndingDirectorySeparator(Path.GetFullPath(a)), Path.TrimEndingDirectorySeparator(Path.GetFullPath(b)), StringComparison.Ordinal);

    /// <summary>A folder the run writes into: it, or the nearest part of its path that exists, must be a folder.</summary>
    private static void CheckWritableFolder(string source, string key, string? value)
    {
        if (value == null) return;
        for (string? part = Path.GetFullPath(value); !string.IsNullOrEmpty(part); part = Path.GetDirectoryName(part))
        {
            if (Directory.Exists(part)) return;
            if (File.Exists(part))
                throw new InvalidInputException(part == Path.GetFullPath(value)
                    ? $"{source}: {key}: {value} is a file; expected a folder to write into (a new one, or one of an earlier run)"
                    : $"{source}: {key}: {value} cannot be created: {part} is a file; expected a path of folders");
        }
    }

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
