namespace SharpTune.Hub;

/// <summary>A dataset repo on disk: the snapshot folder and the configuration (name) whose files to read.</summary>
public sealed record HubDataset(string Folder, string? Name, string Revision);

/// <summary>
/// datasets[].path naming a hub dataset: its data files (parquet, json/jsonl, csv/tsv, txt) are fetched into the cache; a repo
/// that holds only a loading script is read from the parquet files the hub converted it to (revision refs/convert/parquet,
/// laid out CONFIG/SPLIT/NNNN.parquet), as the datasets library does for script datasets it may not run.
/// </summary>
public static class DatasetLocator
{
    public const string ParquetRevision = "refs/convert/parquet";
    private static readonly string[] DataExtensions = [".parquet", ".json", ".jsonl", ".ndjson", ".csv", ".tsv", ".txt"];

    public static bool IsDataFile(string path) =>
        DataExtensions.Contains(Path.GetExtension(path).ToLowerInvariant()) && !Path.GetFileName(path).StartsWith('.') && !IsDoc(path);

    private static bool IsDoc(string path) => Path.GetFileName(path).ToLowerInvariant() is "readme.txt" or "license.txt" or "requirements.txt";

    /// <param name="key">the config key for messages (datasets[0])</param>
    public static HubDataset Resolve(string id, string? revision, string? name, IReadOnlyList<string> dataFiles, string key, HubLookup? lookup = null)
    {
        lookup ??= new HubLookup();
        var settings = lookup.ResolvedSettings;
        var repo = HubRepo.Parse(id, RepoType.Dataset, $"{key}.path");
        string rev = revision ?? "main";
        var downloader = new SnapshotDownloader(settings, lookup.Progress, lookup.Warn);
        IReadOnlyList<string>? files = null;
        if (!settings.Offline)
        {
            using var client = new HubClient(settings);
            try { files = client.RepoInfo(repo, rev).Files; }
            catch (HubUnreachableException e) { lookup.Warn?.Invoke($"{e.Message}; looking for {repo.Describe} in the cache"); }
        }
        if (files is null) return FromCache(repo, rev, name, dataFiles, key, settings);

        IReadOnlyList<string> include = dataFiles.Count > 0 ? dataFiles
            : name is { Length: > 0 } ? [$"{name}/*", $"data/{name}/*"]
            : files.Where(IsDataFile).ToList() is { Count: > 0 } data ? data.Select(Escape).ToList() : [];
        if (dataFiles.Count > 0 || files.Any(IsDataFile))
            return new HubDataset(downloader.Download(new DownloadRequest(repo, rev) { Include = include }).Folder, name, rev);
        if (!files.Any(f => f.EndsWith(".py", StringComparison.Ordinal)))
            throw new InvalidInputException($"{key}.path: {repo.Describe} has no data files (.parquet, .json, .jsonl, .csv, .tsv, .txt) and no loading script; files: {string.Join(", ", files.Take(12))}");
        // A loading script: read the hub's parquet conversion instead of running code.
        using (var client = new HubClient(settings))
            files = client.RepoInfo(repo, ParquetRevision).Files;
        string config = name ?? OnlyConfig(files, repo, key);
        var result = downloader.Download(new DownloadRequest(repo, ParquetRevision) { Include = [$"{config}/*"] });
        return new HubDataset(result.Folder, config, ParquetRevision);
    }

    private static HubDataset FromCache(HubRepo repo, string rev, string? name, IReadOnlyList<string> dataFiles, string key, HubSettings settings)
    {
        var cache = new HubCache(settings.Cache, repo);
        string reason = settings.Offline ? "HF_HUB_OFFLINE is set" : $"{settings.Endpoint} cannot be reached";
        if (cache.FindSnapshot(rev) is { } folder && (dataFiles.Count > 0 || name != null || Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Any(IsDataFile)))
            return new HubDataset(folder, name, rev);
        if (cache.FindSnapshot(ParquetRevision) is { } parquet)
        {
            var present = Directory.EnumerateFiles(parquet, "*.parquet", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(parquet, f).Replace('\\', '/')).ToList();
            return new HubDataset(parquet, name ?? OnlyConfig(present, repo, key), ParquetRevision);
        }
        throw new InvalidInputException($"{key}.path: {repo.Describe}@{rev} is not in the cache ({cache.RepoFolder}) and {reason}; download it while online (sharptune download {repo.Id} --repo-type dataset)");
    }

    /// <summary>The configuration to read when name: is not set: the only one, else "default".</summary>
    private static string OnlyConfig(IReadOnlyList<string> parquetFiles, HubRepo repo, string key)
    {
        var configs = parquetFiles.Where(f => f.Contains('/')).Select(f => f[..f.IndexOf('/')]).Distinct().Order(StringComparer.Ordinal).ToList();
        if (configs.Count == 1) return configs[0];
        if (configs.Contains("default")) return "default";
        if (configs.Count == 0) throw new InvalidInputException($"{key}.path: {repo.Describe} has a loading script and no parquet conversion ({ParquetRevision}) to read instead");
        throw new InvalidInputException($"{key}.name: {repo.Describe} has configurations {string.Join(", ", configs)}; set name: to one of them");
    }

    /// <summary>An exact repo path as an fnmatch pattern.</summary>
    private static string Escape(string path) => string.Concat(path.Select(c => c is '*' or '?' or '[' ? $"[{c}]" : c.ToString()));
}
