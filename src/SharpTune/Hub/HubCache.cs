using System.Text.RegularExpressions;
using SharpTune.Files;

namespace SharpTune.Hub;

/// <summary>
/// The cache layout huggingface_hub 0.24 writes (file_download.py), so that either side finds what the other downloaded:
/// <c>CACHE/models--org--name/blobs/ETAG</c> (the bytes, named by the normalized ETag: git blob sha1, or sha256 for LFS),
/// <c>snapshots/COMMIT/PATH</c> (relative symlinks to ../../blobs/ETAG), <c>refs/REVISION</c> (the commit, no newline),
/// and <c>CACHE/.locks/models--org--name/ETAG.lock</c>.
/// </summary>
public sealed partial class HubCache(string root, HubRepo repo)
{
    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    public static bool IsCommitHash(string revision) => CommitPattern().IsMatch(revision);

    public HubRepo Repo => repo;
    public string RepoFolder => Path.Combine(root, repo.FolderName);
    public string BlobPath(string etag) => Path.Combine(RepoFolder, "blobs", etag);
    public string SnapshotFolder(string commit) => Path.Combine(RepoFolder, "snapshots", commit);
    public string PointerPath(string commit, string file) => Path.Combine(SnapshotFolder(commit), ToLocal(file));
    /// <summary>A revision with slashes (refs/convert/parquet) becomes nested folders under refs/, as in huggingface_hub.</summary>
    public string RefPath(string revision) => Path.Combine(RepoFolder, "refs", ToLocal(revision));
    public string LockPath(string etag) => Path.Combine(root, ".locks", repo.FolderName, etag + ".lock");

    /// <summary>Records that <paramref name="revision"/> points at <paramref name="commit"/> (skipped when they are equal or unchanged).</summary>
    public void WriteRef(string revision, string commit)
    {
        if (revision == commit) return;
        string path = RefPath(revision);
        if (File.Exists(path) && File.ReadAllText(path) == commit) return;
        AtomicFile.WriteText(path, commit);
    }

    /// <summary>The commit a revision names in the cache: itself when it is a commit hash, else refs/REVISION.</summary>
    public string? CommitOf(string revision)
    {
        if (IsCommitHash(revision)) return revision;
        string path = RefPath(revision);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : null;
    }

    /// <summary>The snapshot folder of a cached revision, or null.</summary>
    public string? FindSnapshot(string revision) =>
        CommitOf(revision) is { } commit && Directory.Exists(SnapshotFolder(commit)) ? SnapshotFolder(commit) : null;

    /// <summary>snapshots/COMMIT/PATH → relative symlink to the blob (_create_symlink: os.path.relpath from the link's folder).</summary>
    public void Link(string commit, string file, string etag)
    {
        string pointer = PointerPath(commit, file);
        string folder = Path.GetDirectoryName(pointer)!;
        Directory.CreateDirectory(folder);
        string target = Path.GetRelativePath(folder, BlobPath(etag));
        if (File.Exists(pointer) || new FileInfo(pointer).LinkTarget != null) File.Delete(pointer);
        File.CreateSymbolicLink(pointer, target);
    }

    /// <summary>A repo path (always '/') as a path under a local folder; refuses paths that would leave it.</summary>
    public static string ToLocal(string repoPath)
    {
        var parts = repoPath.Split('/');
        if (parts.Any(p => p is "" or "." or ".."))
            throw new HubException($"invalid file name '{repoPath}' in the repo (empty, '.' or '..' part)");
        return Path.Combine(parts);
    }
}

/// <summary>A hub transfer that failed at run time (network, server, disk, integrity); exit code 1.</summary>
public sealed class HubException(string message) : Exception(message);
