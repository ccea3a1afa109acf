using System.CommandLine;
using SharpTune.Hub;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune download REPO_ID [--repo-type model|dataset] [--revision R] [--include GLOB …] [--exclude GLOB …] [--local-dir D]`.</summary>
public static class DownloadCommand
{
    public static Command Create(CliConsole console)
    {
        var repoId = new Argument<string>("repo_id") { Description = "Repo on the hub (owner/name)." };
        var repoType = new Option<string>("--repo-type") { Description = "model or dataset.", DefaultValueFactory = _ => "model" };
        var revision = new Option<string>("--revision") { Description = "Branch, tag or commit.", DefaultValueFactory = _ => "main" };
        var include = new Option<string[]>("--include") { Description = "Only files matching these fnmatch patterns (repeatable).", AllowMultipleArgumentsPerToken = true };
        var exclude = new Option<string[]>("--exclude") { Description = "Skip files matching these fnmatch patterns (repeatable).", AllowMultipleArgumentsPerToken = true };
        var localDir = new Option<string?>("--local-dir") { Description = "Write plain files into this folder instead of the Hugging Face cache." };
        var command = new Command("download", "Download a model or dataset repo from the Hugging Face Hub into the cache (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE).")
            { repoId, repoType, revision, include, exclude, localDir };
        console.Bind(command, parse =>
        {
            var repo = HubRepo.Parse(parse.GetValue(repoId)!, HubRepo.ParseType(parse.GetValue(repoType)!, "--repo-type"), "repo_id");
            var request = new DownloadRequest(repo, parse.GetValue(revision)!)
            {
                Include = parse.GetValue(include) ?? [], Exclude = parse.GetValue(exclude) ?? [], LocalDir = parse.GetValue(localDir),
            };
            // A file named without wildcards must be there; offline that is checked against the cached snapshot.
            request = request with { Required = request.Include.Where(p => p.IndexOfAny(['*', '?', '[']) < 0 && !p.EndsWith('/')).ToList() };
            var result = DownloadProgressBar.Run(console, progress =>
                new SnapshotDownloader(HubSettings.FromEnvironment(), progress, w => console.Error.WriteLine($"warning: {w}")).Download(request));
            console.Out.WriteLine(result.Offline
                ? $"{repo.Describe}: {result.Files.Count} file(s) from the cache (offline) in {result.Folder}"
                : $"{repo.Describe}@{result.Commit[..Math.Min(12, result.Commit.Length)]}: {result.Files.Count} file(s), {result.Fetched} fetched ({TextDownloadProgress.Bytes(result.BytesFetched)}), in {result.Folder}");
            console.Out.WriteLine(result.Folder);
            return 0;
        });
        return command;
    }
}
