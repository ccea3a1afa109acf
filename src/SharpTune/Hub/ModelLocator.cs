namespace SharpTune.Hub;

/// <summary>Turns what a user names (a folder, or a repo id already in the Hugging Face cache) into a local folder.</summary>
public static class ModelLocator
{
    /// <summary>The hub cache folder: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.</summary>
    public static string HubCache()
    {
        var hubCache = Environment.GetEnvironmentVariable("HF_HUB_CACHE");
        if (!string.IsNullOrEmpty(hubCache)) return hubCache;
        var home = Environment.GetEnvironmentVariable("HF_HOME");
        if (!string.IsNullOrEmpty(home)) return Path.Combine(home, "hub");
        return Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface", "hub");
    }

    /// <param name="nameOrPath">a local folder, or org/name found under the cache as models--org--name/snapshots/REV</param>
    /// <param name="revision">a branch/tag in refs/ or a snapshot hash; default main</param>
    public static string Resolve(string nameOrPath, string? revision = null)
    {
        if (Directory.Exists(nameOrPath)) return Path.GetFullPath(nameOrPath);
        var parts = nameOrPath.Split('/');
        if (parts.Length == 2 && parts.All(p => p.Length > 0) && !nameOrPath.StartsWith('.'))
        {
            var repoDir = Path.Combine(HubCache(), $"models--{parts[0]}--{parts[1]}");
            var snapshots = Path.Combine(repoDir, "snapshots");
            if (Directory.Exists(snapshots))
            {
                var rev = revision ?? "main";
                var refFile = Path.Combine(repoDir, "refs", rev);
                var hash = File.Exists(refFile) ? File.ReadAllText(refFile).Trim() : rev;
                var snapshot = Path.Combine(snapshots, hash);
                if (Directory.Exists(snapshot)) return snapshot;
                var any = Directory.GetDirectories(snapshots).OrderByDescending(Directory.GetLastWriteTimeUtc).FirstOrDefault();
                if (revision is null && any is not null) return any;
            }
            throw new InvalidInputException($"{nameOrPath}: not a local folder and not in the Hugging Face cache ({repoDir}); download it first or give a folder path");
        }
        throw new InvalidInputException($"{nameOrPath}: no such model folder");
    }
}
