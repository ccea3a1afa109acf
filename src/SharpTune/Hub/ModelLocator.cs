namespace SharpTune.Hub;

/// <summary>Which files of a model repo a caller needs (downloading a repo whole would also fetch .bin/.onnx/.gguf copies).</summary>
public enum ModelFiles
{
    /// <summary>Weights, configs and tokenizer: top-level *.json, *.safetensors, tokenizer.model, *.jinja.</summary>
    Weights,
    /// <summary>Configs and tokenizer without weights (tokenizer_config, base_model_config).</summary>
    Metadata,
}

/// <summary>How a reference to the hub is looked up: settings (endpoint, token, cache, offline), progress and warnings.</summary>
public sealed record HubLookup
{
    public HubSettings? Settings { get; init; }
    public IDownloadProgress? Progress { get; init; }
    public Action<string>? Warn { get; init; }

    public HubSettings ResolvedSettings => Settings ?? HubSettings.FromEnvironment();
}

/// <summary>
/// The one resolver of model references (base_model, base_model_config, tokenizer_config, lora_model_dir, --model): a local
/// folder is used as it is; a repo id is fetched into the Hugging Face cache on first use (later uses find it there and
/// make one repo-info request), or taken from the cache alone when offline.
/// </summary>
public static class ModelLocator
{
    private static readonly string[] WeightPatterns = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja"];
    private static readonly string[] MetadataPatterns = ["*.json", "tokenizer.model", "*.jinja"];

    /// <summary>The hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.</summary>
    public static string HubCache() => HubSettings.FromEnvironment().Cache;

    /// <param name="nameOrPath">a local folder, or a repo id (org/name)</param>
    /// <param name="revision">branch, tag or commit (revision_of_model); default main</param>
    public static string Resolve(string nameOrPath, string? revision = null, ModelFiles files = ModelFiles.Weights, HubLookup? lookup = null)
    {
        if (Directory.Exists(nameOrPath)) return Path.GetFullPath(nameOrPath);
        if (!IsRepoId(nameOrPath)) throw new InvalidInputException($"{nameOrPath}: no such model folder");
        lookup ??= new HubLookup();
        var request = new DownloadRequest(HubRepo.Parse(nameOrPath, RepoType.Model), revision ?? "main")
        {
            Include = files == ModelFiles.Weights ? WeightPatterns : MetadataPatterns,
            Exclude = ["*/*"], // model files sit at the top; subfolders hold other formats (onnx/, original/)
        };
        return new SnapshotDownloader(lookup.ResolvedSettings, lookup.Progress, lookup.Warn).Download(request).Folder;
    }

    /// <summary>A reference that can only be a repo id: not a path that exists, not ./x, /x or a/b/c.</summary>
    public static bool IsRepoId(string reference) =>
        !Directory.Exists(reference) && !File.Exists(reference) && !Path.IsPathRooted(reference) && HubRepo.LooksLikeId(reference);
}
