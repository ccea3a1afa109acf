using System.CommandLine;
using SharpTune.Hub;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune push DIR REPO_ID`: upload a folder as one commit (upload_folder's protocol).</summary>
public static class PushCommand
{
    public static Command Create(CliConsole console)
    {
        var folder = new Argument<string>("dir") { Description = "Folder to upload (an adapter, a model, a training output_dir)." };
        var repoId = new Argument<string>("repo_id") { Description = "Repo on the hub (owner/name); created when missing." };
        var repoType = new Option<string>("--repo-type") { Description = "model or dataset.", DefaultValueFactory = _ => "model" };
        var revision = new Option<string>("--revision") { Description = "Branch to commit to.", DefaultValueFactory = _ => "main" };
        var isPrivate = new Option<bool>("--private") { Description = "Create the repo as private (an existing repo keeps its visibility)." };
        var message = new Option<string>("--commit-message") { Description = "Commit summary.", DefaultValueFactory = _ => "Upload folder using SharpTune" };
        var pathInRepo = new Option<string>("--path-in-repo") { Description = "Folder inside the repo to upload into.", DefaultValueFactory = _ => "" };
        var exclude = new Option<string[]>("--exclude") { Description = "Skip files matching these fnmatch patterns (repeatable).", AllowMultipleArgumentsPerToken = true };
        var command = new Command("push", "Upload a folder to the Hugging Face Hub (needs HF_TOKEN with write access).")
            { folder, repoId, repoType, revision, isPrivate, message, pathInRepo, exclude };
        console.Bind(command, parse =>
        {
            var repo = HubRepo.Parse(parse.GetValue(repoId)!, HubRepo.ParseType(parse.GetValue(repoType)!, "--repo-type"), "repo_id");
            var result = new HubUploader(HubSettings.FromEnvironment(), console.Out.WriteLine).Push(new PushRequest(parse.GetValue(folder)!, repo)
            {
                Revision = parse.GetValue(revision)!, Private = parse.GetValue(isPrivate), CommitMessage = parse.GetValue(message)!,
                PathInRepo = parse.GetValue(pathInRepo)!, Exclude = parse.GetValue(exclude) ?? [],
            });
            console.Out.WriteLine(result.CommitUrl.Length > 0 ? result.CommitUrl : result.CommitOid);
            return 0;
        });
        return command;
    }
}
