using System.Globalization;
using System.Security.Cryptography;
using SharpTune.Files;

namespace SharpTune.Hub;

/// <summary>What to fetch: a repo at a revision, filtered by allow/ignore patterns, into the cache or a plain folder.</summary>
public sealed record DownloadRequest(HubRepo Repo, string Revision = "main")
{
    public IReadOnlyList<string> Include { get; init; } = [];
    public IReadOnlyList<string> Exclude { get; init; } = [];
    /// <summary>Files that must be there; offline, a missing one is an error naming it (online the repo info decides).</summary>
    public IReadOnlyList<string> Required { get; init; } = [];
    /// <summary>Real files in this folder instead of the cache (huggingface_hub's local_dir, metadata under .cache/huggingface/download).</summary>
    public string? LocalDir { get; init; }
}

/// <summary>Where the files are, at which commit, and what had to be fetched.</summary>
public sealed record DownloadResult(string Folder, string Commit, IReadOnlyList<string> Files, int Fetched, long BytesFetched, bool Offline);

/// <summary>
/// snapshot_download + hf_hub_download of huggingface_hub 0.24: repo info gives the commit and file list; a file already
/// linked in snapshots/COMMIT is not requested again; otherwise HEAD gives its ETag and size, an existing blob is linked,
/// and a missing one is fetched into blobs/ETAG.incomplete (resumed with Range), checked (size; sha256 for LFS files),
/// moved into place and linked. Files are fetched in parallel under one progress display.
/// </summary>
public sealed class SnapshotDownloader(HubSettings settings, IDownloadProgress? progress = null, Action<string>? warn = null)
{
    private const int ErrorNoSpace = 28;     // ENOSPC
    private const int ErrorDiskFull = 112;   // ERROR_DISK_FULL

    public DownloadResult Download(DownloadRequest request)
    {
        var repo = request.Repo;
        var cache = new HubCache(settings.Cache, repo);
        var patterns = new RepoPatterns(request.Include, request.Exclude);
        if (settings.Offline) return FromCache(cache, request, "HF_HUB_OFFLINE is set, so nothing is fetched");
        using var client = new HubClient(settings);
        HubRepoInfo info;
        try
        {
            info = client.RepoInfo(repo, request.Revision);
        }
        catch (HubUnreachableException e)
        {
            var cached = FromCache(cache, request, $"{e.Message}; set HF_ENDPOINT to a reachable hub or HF_HUB_OFFLINE=1 to use the cache only");
            warn?.Invoke($"{e.Message}; using the cached snapshot {cached.Folder}");
            return cached;
        }
        string commit = info.Sha;
        var files = info.Files.Where(patterns.Matches).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0)
            throw new InvalidInputException($"{repo.Describe}@{request.Revision}: no file matches" + Describe(request) +
                                            $"; the repo has {string.Join(", ", info.Files.Take(12))}{(info.Files.Count > 12 ? ", …" : "")}");
        foreach (var required in request.Required.Where(r => !info.Files.Contains(r)))
            throw new InvalidInputException($"{repo.Describe}@{request.Revision}: file '{required}' not found in the repo");
        if (request.LocalDir is null) cache.WriteRef(request.Revision, commit);

        var targets = new FileTarget?[files.Count];
        RunAll(() => Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = settings.Workers },
            i => targets[i] = Plan(client, cache, request, commit, files[i])));
        var pending = targets.OfType<FileTarget>().ToList();
        long needed = pending.Sum(t => Math.Max(0, t.Meta.Size - t.Existing));
        string folder = request.LocalDir is { } local ? Path.GetFullPath(local) : cache.SnapshotFolder(commit);
        if (pending.Count > 0)
        {
            CheckSpace(pending[0].Final, needed, repo);
            progress?.Start($"{repo.Describe}@{(request.Revision == commit ? commit[..7] : request.Revision)}", pending.Count, needed);
            try
            {
                RunAll(() => Parallel.ForEach(pending, new ParallelOptions { MaxDegreeOfParallelism = settings.Workers },
                    t => Fetch(client, cache, request, commit, t)));
            }
            finally
            {
                progress?.Finish();
            }
        }
        Directory.CreateDirectory(folder);
        return new DownloadResult(folder, commit, files, pending.Count, needed, Offline: false);
    }

    /// <summary>Runs parallel work and surfaces its first failure as itself (a one-line message), not as an AggregateException.</summary>
    private static void RunAll(Action work)
    {
        try { work(); }
        catch (AggregateException e)
        {
            var first = e.Flatten().InnerExceptions;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first.FirstOrDefault(x => x is InvalidInputException) ?? first[0]).Throw();
        }
    }

    private sealed record FileTarget(string File, HubFileMetadata Meta, string Incomplete, string Final, string? Lock, long Existing);

    /// <summary>Null when the file is already in place; else where it will be written.</summary>
    private FileTarget? Plan(HubClient client, HubCache cache, DownloadRequest request, string commit, string file)
    {
        if (request.LocalDir is { } localDir)
        {
            string path = Path.Combine(localDir, HubCache.ToLocal(file));
            string metadata = LocalMetadataPath(localDir, file);
            var recorded = ReadLocalMetadata(metadata);
            if (File.Exists(path) && recorded?.Commit == commit) return null;
            var meta = client.FileMetadata(request.Repo, commit, file);
            if (File.Exists(path) && recorded?.Etag == meta.Etag)
            {
                WriteLocalMetadata(metadata, commit, meta.Etag);
                return null;
            }
            string incomplete = Path.ChangeExtension(metadata, $".{meta.Etag}.incomplete");
            return new FileTarget(file, meta, incomplete, path, Path.ChangeExtension(metadata, ".lock"), LengthOf(incomplete));
        }
        // With a commit hash as revision a present pointer needs no request at all (the re-download no-op).
        if (File.Exists(cache.PointerPath(commit, file))) return null;
        var m = client.FileMetadata(request.Repo, commit, file);
        if (m.Commit != commit) warn?.Invoke($"{request.Repo.Describe}: {file} resolved to commit {m.Commit}, not {commit}");
        string blob = cache.BlobPath(m.Etag);
        if (File.Exists(blob))
        {
            cache.Link(commit, file, m.Etag);
            return null;
        }
        return new FileTarget(file, m, blob + ".incomplete", blob, cache.LockPath(m.Etag), LengthOf(blob + ".incomplete"));
    }

    private void Fetch(HubClient client, HubCache cache, DownloadRequest request, string commit, FileTarget t)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(t.Incomplete)!);
        using (AcquireLock(t.Lock))
        {
            if (request.LocalDir is null && File.Exists(t.Final))
            {
                cache.Link(commit, t.File, t.Meta.Etag); // another process fetched it while we waited
                return;
            }
            FetchInto(client, request.Repo, commit, t);
            AtomicFile.Publish(t.Incomplete, t.Final);
            if (request.LocalDir is { } localDir) WriteLocalMetadata(LocalMetadataPath(localDir, t.File), commit, t.Meta.Etag);
            else cache.Link(commit, t.File, t.Meta.Etag);
        }
    }

    /// <summary>http_get: append to .incomplete from its current length (Range), retrying dropped transfers from where they stopped.</summary>
    private void FetchInto(HubClient client, HubRepo repo, string commit, FileTarget t)
    {
        using var hash = t.Meta.IsLfs ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
        using var output = new FileStream(t.Incomplete, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        long have = output.Length;
        if (have > t.Meta.Size) { output.SetLength(0); have = 0; }
        if (hash != null && have > 0) HashPrefix(output, have, hash);
        output.Position = have;
        var buffer = new byte[1 << 16];
        for (int attempt = 1; have < t.Meta.Size || attempt == 1; attempt++)
        {
            try
            {
                using var response = client.Get(repo, commit, t.File, have);
                bool partial = response.StatusCode == System.Net.HttpStatusCode.PartialContent;
                if (have > 0 && (!partial || response.Content.Headers.ContentRange?.From != have))
                {
                    // The server ignored the Range: start over rather than append a second copy (huggingface_hub would).
                    output.SetLength(0);
                    have = 0;
                    if (hash != null) HashPrefix(output, 0, hash);
                    if (partial) continue;
                }
                using var body = response.Content.ReadAsStream();
                int n;
                while ((n = body.Read(buffer)) > 0)
                {
                    Write(output, buffer.AsSpan(0, n), t);
                    hash?.AppendData(buffer, 0, n);
                    have += n;
                    progress?.Advance(n);
                }
                break;
            }
            catch (Exception e) when (e is IOException or HttpRequestException or HubUnreachableException && !IsDiskFull(e))
            {
                if (attempt >= settings.MaxAttempts)
                    throw new HubException($"{repo.Describe}: downloading {t.File} failed after {attempt} attempts at byte {have} of {t.Meta.Size} ({e.Message}); run again to resume from {t.Incomplete}");
                output.Flush();
                Thread.Sleep(settings.RetryDelay * Math.Pow(2, attempt - 1));
            }
        }
        output.Flush();
        if (have != t.Meta.Size)
        {
            output.Close();
            File.Delete(t.Incomplete);
            throw new HubException($"{repo.Describe}: {t.File} should be {t.Meta.Size} bytes but {have} arrived; the partial file was removed, run again");
        }
        if (hash != null)
        {
            string actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (!string.Equals(actual, t.Meta.Etag, StringComparison.OrdinalIgnoreCase))
            {
                output.Close();
                File.Delete(t.Incomplete);
                throw new HubException($"{repo.Describe}: {t.File} failed its sha256 check (expected {t.Meta.Etag}, got {actual}); the download was discarded and nothing was linked");
            }
        }
    }

    private void Write(FileStream output, ReadOnlySpan<byte> data, FileTarget t)
    {
        try { output.Write(data); }
        catch (IOException e) when (IsDiskFull(e))
        {
            throw new HubException($"disk full while writing {t.Incomplete} ({TextDownloadProgress.Bytes(t.Meta.Size)} file); free space or set HF_HUB_CACHE (or --local-dir) to a larger disk, then run again to resume");
        }
    }

    private static void HashPrefix(FileStream file, long length, IncrementalHash hash)
    {
        hash.GetHashAndReset();
        file.Position = 0;
        var buffer = new byte[1 << 16];
        long left = length;
        while (left > 0)
        {
            int n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n <= 0) break;
            hash.AppendData(buffer, 0, n);
            left -= n;
        }
    }

    private static bool IsDiskFull(Exception e) =>
        e is IOException io && ((io.HResult & 0xFFFF) is ErrorNoSpace or ErrorDiskFull || io.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase));

    private static void CheckSpace(string anyTarget, long needed, HubRepo repo)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(anyTarget))!;
        Directory.CreateDirectory(folder);
        long free;
        try { free = new DriveInfo(folder).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException) { return; }
        if (free < needed)
            throw new HubException($"disk full: {repo.Describe} needs {TextDownloadProgress.Bytes(needed)} in {folder} but {TextDownloadProgress.Bytes(free)} is free; free space or set HF_HUB_CACHE (or --local-dir) to a larger disk");
    }

    /// <summary>huggingface_hub's file locks (filelock: flock on the .lock file, which stays); also orders our own threads.</summary>
    private static FileStream? AcquireLock(string? path)
    {
        if (path is null) return null;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var deadline = DateTime.UtcNow.AddMinutes(10);
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (DateTime.UtcNow < deadline) { Thread.Sleep(50); }
        }
    }

    private DownloadResult FromCache(HubCache cache, DownloadRequest request, string reason)
    {
        var repo = request.Repo;
        string folder;
        string commit;
        if (request.LocalDir is { } localDir)
        {
            if (!Directory.Exists(Path.Combine(localDir, ".cache", "huggingface", "download")))
                throw new InvalidInputException($"{repo.Describe}: {localDir} holds no earlier download and {reason}");
            folder = Path.GetFullPath(localDir);
            commit = "";
        }
        else
        {
            folder = cache.FindSnapshot(request.Revision)
                ?? throw new InvalidInputException($"{repo.Describe}@{request.Revision}: not in the cache ({cache.RepoFolder}) and {reason}; download it while online (sharptune download {repo.Id}{(repo.Type == RepoType.Dataset ? " --repo-type dataset" : "")})");
            commit = Path.GetFileName(folder);
        }
        var present = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f).Replace('\\', '/'))
            .Where(f => !f.StartsWith(".cache/", StringComparison.Ordinal))
            .Where(new RepoPatterns(request.Include, request.Exclude).Matches).Order(StringComparer.Ordinal).ToList();
        foreach (var literal in request.Required)
            if (!present.Contains(literal))
                throw new InvalidInputException($"{repo.Describe}@{request.Revision}: {literal} is not in the cached snapshot {folder} and {reason}");
        if (present.Count == 0)
            throw new InvalidInputException($"{repo.Describe}@{request.Revision}: no file of the cached snapshot {folder} matches" + Describe(request) + $" and {reason}");
        return new DownloadResult(folder, commit, present, 0, 0, Offline: true);
    }

    private static string Describe(DownloadRequest r) =>
        (r.Include.Count > 0 ? $" --include {string.Join(" ", r.Include)}" : "") + (r.Exclude.Count > 0 ? $" --exclude {string.Join(" ", r.Exclude)}" : "");

    private static long LengthOf(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;

    /// <summary>local_dir bookkeeping of huggingface_hub 0.24 (_local_folder.py): LOCAL/.cache/huggingface/download/PATH.metadata.</summary>
    private static string LocalMetadataPath(string localDir, string file) =>
        Path.Combine(localDir, ".cache", "huggingface", "download", HubCache.ToLocal(file) + ".metadata");

    private static (string Commit, string Etag)? ReadLocalMetadata(string path)
    {
        if (!File.Exists(path)) return null;
        var lines = File.ReadAllLines(path);
        return lines.Length >= 2 ? (lines[0].Trim(), lines[1].Trim()) : null;
    }

    private static void WriteLocalMetadata(string path, string commit, string etag)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string huggingface = Path.GetFullPath(Path.Combine(path, "..")); // the .gitignore huggingface_hub puts in .cache/huggingface
        while (Path.GetFileName(huggingface) != "huggingface") huggingface = Path.GetDirectoryName(huggingface)!;
        string gitignore = Path.Combine(huggingface, ".gitignore");
        if (!File.Exists(gitignore)) File.WriteAllText(gitignore, "*");
        double now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
        File.WriteAllText(path, $"{commit}\n{etag}\n{now.ToString("F3", CultureInfo.InvariantCulture)}\n");
    }
}
