using System.Text.RegularExpressions;

namespace SharpTune.Hub;

/// <summary>Kinds of hub repositories SharpTune reads and writes.</summary>
public enum RepoType { Model, Dataset }

/// <summary>A repository on the hub: its id (owner/name or name) and kind, with the names huggingface_hub derives from them.</summary>
public sealed partial record HubRepo(string Id, RepoType Type)
{
    /// <summary>huggingface_hub's validate_repo_id: optional namespace, word characters, '-' and '.', at most 96 characters.</summary>
    [GeneratedRegex(@"^(\b[\w\-.]+\b/)?\b[\w\-.]+\b$")]
    private static partial Regex IdPattern();

    /// <summary>Whether <paramref name="text"/> has the form of a repo id (it may still be a local path that is absent).</summary>
    public static bool LooksLikeId(string text) =>
        text.Length <= 96 && IdPattern().IsMatch(text) && !text.Contains("--") && !text.Contains("..") && !text.StartsWith('.');

    public static HubRepo Parse(string id, RepoType type, string what = "repo id")
    {
        if (!LooksLikeId(id))
            throw new InvalidInputException($"{what}: '{id}' is not a Hugging Face repo id; expected owner/name (letters, digits, '-', '_', '.', at most 96 characters)");
        return new HubRepo(id, type);
    }

    /// <summary>"models--org--name" / "datasets--org--name": the cache folder (repo_folder_name).</summary>
    public string FolderName => $"{(Type == RepoType.Model ? "models" : "datasets")}--{Id.Replace("/", "--")}";

    /// <summary>"models" / "datasets": the API path segment (/api/models/ID).</summary>
    public string ApiSegment => Type == RepoType.Model ? "models" : "datasets";

    /// <summary>"" / "datasets/": the prefix of file URLs (REPO_TYPES_URL_PREFIXES).</summary>
    public string UrlPrefix => Type == RepoType.Model ? "" : "datasets/";

    public string Describe => Type == RepoType.Model ? Id : $"dataset {Id}";

    public static RepoType ParseType(string text, string what) => text.ToLowerInvariant() switch
    {
        "model" => RepoType.Model,
        "dataset" => RepoType.Dataset,
        _ => throw new InvalidInputException($"{what}: '{text}' is not a repo type; expected model or dataset"),
    };
}
