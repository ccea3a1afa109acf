using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpTune.Hub;

/// <summary>What to push: a local folder into a repo (created when missing) as one commit.</summary>
public sealed record PushRequest(string Folder, HubRepo Repo)
{
    public string Revision { get; init; } = "main";
    public bool Private { get; init; }
    public string CommitMessage { get; init; } = "Upload folder using SharpTune";
    public string CommitDescription { get; init; } = "";
    /// <summary>Folder inside the repo to upload into ("" = the root), e.g. last-checkpoint.</summary>
    public string PathInRepo { get; init; } = "";
    public IReadOnlyList<string> Exclude { get; init; } = [];
}

public sealed record PushResult(string CommitOid, string CommitUrl, int Files, int LfsUploaded, int LfsAlreadyThere);

/// <summary>
/// huggingface_hub 0.24's upload_folder: create_repo (409 = exists), preupload (the hub picks regular or LFS per file from
/// size and a 512-byte sample), the LFS batch API with the basic (one PUT) or multipart transfer plus verify for LFS files,
/// then one create_commit whose NDJSON body carries a header line, regular files inline (base64) and LFS pointers (sha256, size).
/// </summary>
public sealed class HubUploader(HubSettings settings, Action<string>? log = null)
{
    // upload_folder's DEFAULT_IGNORE_PATTERNS: git metadata and huggingface_hub's own bookkeeping are never uploaded.
    private static readonly string[] DefaultIgnore = [".git/*", "*/.git/*", ".cache/huggingface/*", "*/.cache/huggingface/*"];
    private const int SampleBytes = 512;
    private const int BatchSize = 256;

    private sealed record LocalFile(string RepoPath, string FullPath, long Size, string Sha256, byte[] Sample);

    public PushResult Push(PushRequest request)
    {
        var repo = request.Repo;
        if (settings.Offline) throw new InvalidInputException($"push {repo.Describe}: HF_HUB_OFFLINE is set; pushing needs the hub (unset it)");
        if (settings.Token is null) throw new InvalidInputException($"push {repo.Describe}: needs a token with write access; {HubSettings.TokenHint}");
        if (!Directory.Exists(request.Folder)) throw new InvalidInputException($"push: {request.Folder} is not a folder");
        var files = Collect(request);
        if (files.Count == 0) throw new InvalidInputException($"push: {request.Folder} has no files to upload");
        using var client = new HubClient(settings);
        try
        {
            CreateRepo(client, repo, request.Private);
            var modes = Preupload(client, request, files);
            var lfs = files.Where(f => modes[f.RepoPath].Mode == "lfs" && !modes[f.RepoPath].Ignore).ToList();
            var (uploaded, present) = UploadLfs(client, request, lfs);
            var (oid, url) = Commit(client, request, files.Where(f => !modes[f.RepoPath].Ignore).ToList(), modes);
            log?.Invoke($"pushed {files.Count} file(s) to {settings.Endpoint}/{repo.UrlPrefix}{repo.Id} ({uploaded} LFS upload(s), {present} already there): commit {oid}");
            return new PushResult(oid, url, files.Count, uploaded, present);
        }
        catch (HubUnreachableException e)
        {
            throw new HubException($"push {repo.Describe}: {e.Message}");
        }
    }

    private static List<LocalFile> Collect(PushRequest request)
    {
        var ignore = new RepoPatterns([], [.. DefaultIgnore, .. request.Exclude]);
        string prefix = request.PathInRepo.Trim('/');
        var list = new List<LocalFile>();
        foreach (var full in Directory.EnumerateFiles(request.Folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string relative = Path.GetRelativePath(request.Folder, full).Replace('\\', '/');
            if (!ignore.Matches(relative)) continue;
            using var stream = File.OpenRead(full);
            var sample = new byte[Math.Min(SampleBytes, stream.Length)];
            stream.ReadExactly(sample);
            stream.Position = 0;
            string sha = Convert.ToHexStringLower(SHA256.HashData(stream));
            list.Add(new LocalFile(prefix.Length > 0 ? $"{prefix}/{relative}" : relative, full, stream.Length, sha, sample));
        }
        return list;
    }

    /// <summary>POST /api/repos/create {name, organization, private, type}; 409 means it exists, which is fine (exist_ok).</summary>
    private void CreateRepo(HubClient client, HubRepo repo, bool isPrivate)
    {
        int slash = repo.Id.IndexOf('/');
        var body = new JsonObject
        {
            ["name"] = slash < 0 ? repo.Id : repo.Id[(slash + 1)..],
            ["organization"] = slash < 0 ? null : repo.Id[..slash],
            ["private"] = isPrivate,
        };
        if (repo.Type == RepoType.Dataset) body["type"] = "dataset";
        var answer = client.SendJson(HttpMethod.Post, client.Url("api/repos/create"), () => HubClient.JsonContent(body), repo, null,
            accept: r => (int)r.StatusCode == 409);
        if (answer.Status != 409) log?.Invoke($"created {(isPrivate ? "private " : "")}repo {settings.Endpoint}/{repo.UrlPrefix}{repo.Id}");
    }

    private Dictionary<string, (string Mode, bool Ignore)> Preupload(HubClient client, PushRequest request, List<LocalFile> files)
    {
        var modes = new Dictionary<string, (string Mode, bool Ignore)>();
        string url = client.Url($"api/{request.Repo.ApiSegment}/{request.Repo.Id}/preupload/{HubClient.QuoteRevision(request.Revision)}");
        foreach (var chunk in files.Chunk(BatchSize))
        {
            var body = new JsonObject
            {
                ["files"] = new JsonArray(chunk.Select(f => (JsonNode)new JsonObject
                {
                    ["path"] = f.RepoPath, ["sample"] = Convert.ToBase64String(f.Sample), ["size"] = f.Size, ["sha"] = f.Sha256,
                }).ToArray()),
            };
            var answer = client.SendJson(HttpMethod.Post, url, () => HubClient.JsonContent(body), request.Repo, request.Revision);
            foreach (var entry in answer.Json?["files"] as JsonArray ?? [])
            {
                string path = entry?["path"]?.GetValue<string>() ?? "";
                string mode = entry?["uploadMode"]?.GetValue<string>() ?? "regular";
                modes[path] = (mode, entry?["shouldIgnore"]?.GetValue<bool>() ?? false);
            }
        }
        foreach (var f in files)
        {
            if (!modes.TryGetValue(f.RepoPath, out var m))
                throw new HubException($"push {request.Repo.Describe}: the hub's preupload answer has no entry for {f.RepoPath}");
            if (f.Size == 0) modes[f.RepoPath] = ("regular", m.Ignore); // huggingface_hub: empty files are always regular
            if (m.Ignore) log?.Invoke($"skipped {f.RepoPath}: the repo's .gitignore excludes it");
        }
        return modes;
    }

    private (int Uploaded, int Present) UploadLfs(HubClient client, PushRequest request, List<LocalFile> files)
    {
        int uploaded = 0, present = 0;
        var repo = request.Repo;
        string url = client.Url($"{repo.UrlPrefix}{repo.Id}.git/info/lfs/objects/batch");
        var lfsHeaders = new Dictionary<string, string> { ["Accept"] = "application/vnd.git-lfs+json" };
        foreach (var chunk in files.DistinctBy(f => f.Sha256).Chunk(BatchSize))
        {
            var body = new JsonObject
            {
                ["operation"] = "upload",
                ["transfers"] = new JsonArray("basic", "multipart"),
                ["objects"] = new JsonArray(chunk.Select(f => (JsonNode)new JsonObject { ["oid"] = f.Sha256, ["size"] = f.Size }).ToArray()),
                ["hash_algo"] = "sha256",
                ["ref"] = new JsonObject { ["name"] = request.Revision },
            };
            var answer = client.SendJson(HttpMethod.Post, url, () => HubClient.JsonContent(body, "application/vnd.git-lfs+json"), repo, request.Revision, lfsHeaders);
            var byOid = chunk.ToDictionary(f => f.Sha256);
            foreach (var obj in answer.Json?["objects"] as JsonArray ?? [])
            {
                string oid = obj?["oid"]?.GetValue<string>() ?? "";
                if (!byOid.TryGetValue(oid, out var file)) continue;
                if (obj?["error"] is { } error)
                    throw new HubException($"push {repo.Describe}: the LFS batch API refused {file.RepoPath}: {error["message"]?.GetValue<string>() ?? error.ToJsonString()}");
                if (obj?["actions"] is not JsonObject actions) { present++; continue; } // the hub has this object already
                if (actions["upload"] is JsonObject upload) Transfer(client, repo, file, upload);
                if (actions["verify"] is JsonObject verify)
                    client.SendJson(HttpMethod.Post, verify["href"]!.GetValue<string>(),
                        () => HubClient.JsonContent(new JsonObject { ["oid"] = file.Sha256, ["size"] = file.Size }, "application/vnd.git-lfs+json"),
                        repo, request.Revision, Headers(verify));
                uploaded++;
                log?.Invoke($"uploaded {file.RepoPath} ({TextDownloadProgress.Bytes(file.Size)}) through LFS");
            }
        }
        return (uploaded, present);
    }

    /// <summary>basic: one PUT of the file; multipart (header.chunk_size): one PUT per numbered part URL, then the completion POST.</summary>
    private static void Transfer(HubClient client, HubRepo repo, LocalFile file, JsonObject upload)
    {
        string href = upload["href"]!.GetValue<string>();
        var header = Headers(upload);
        if (header.Remove("chunk_size", out var chunkText))
        {
            long chunk = long.Parse(chunkText, System.Globalization.CultureInfo.InvariantCulture);
            var parts = header.Where(h => h.Key.All(char.IsAsciiDigit)).OrderBy(h => int.Parse(h.Key, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            var etags = new JsonArray();
            for (int i = 0; i < parts.Count; i++)
            {
                long offset = i * chunk, length = Math.Min(chunk, file.Size - offset);
                var answer = client.SendJson(HttpMethod.Put, parts[i].Value, () => FileContent(file.FullPath, offset, length), repo, null);
                etags.Add(new JsonObject { ["partNumber"] = i + 1, ["etag"] = answer.Etag ?? throw new HubException($"push {repo.Describe}: part {i + 1} of {file.RepoPath} got no ETag") });
            }
            client.SendJson(HttpMethod.Post, href, () => HubClient.JsonContent(new JsonObject { ["oid"] = file.Sha256, ["parts"] = etags }, "application/vnd.git-lfs+json"), repo, null);
            return;
        }
        client.SendJson(HttpMethod.Put, href, () => FileContent(file.FullPath, 0, file.Size), repo, null, header);
    }

    private static Dictionary<string, string> Headers(JsonObject action) =>
        (action["header"] as JsonObject ?? []).ToDictionary(p => p.Key, p => p.Value?.ToString() ?? "");

    private static StreamContent FileContent(string path, long offset, long length)
    {
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        stream.Position = offset;
        var content = new StreamContent(new BoundedStream(stream, length), 1 << 16);
        content.Headers.ContentLength = length;
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return content;
    }

    private (string Oid, string Url) Commit(HubClient client, PushRequest request, List<LocalFile> files, Dictionary<string, (string Mode, bool Ignore)> modes)
    {
        var ndjson = new StringBuilder();
        ndjson.Append(new JsonObject { ["key"] = "header", ["value"] = new JsonObject { ["summary"] = request.CommitMessage, ["description"] = request.CommitDescription } }.ToJsonString()).Append('\n');
        foreach (var f in files)
        {
            JsonObject line = modes[f.RepoPath].Mode == "lfs"
                ? new() { ["key"] = "lfsFile", ["value"] = new JsonObject { ["path"] = f.RepoPath, ["algo"] = "sha256", ["oid"] = f.Sha256, ["size"] = f.Size } }
                : new() { ["key"] = "file", ["value"] = new JsonObject { ["content"] = Convert.ToBase64String(File.ReadAllBytes(f.FullPath)), ["path"] = f.RepoPath, ["encoding"] = "base64" } };
            ndjson.Append(line.ToJsonString()).Append('\n');
        }
        string text = ndjson.ToString();
        string url = client.Url($"api/{request.Repo.ApiSegment}/{request.Repo.Id}/commit/{HubClient.QuoteRevision(request.Revision)}");
        var answer = client.SendJson(HttpMethod.Post, url, () => new StringContent(text, Encoding.UTF8, "application/x-ndjson"), request.Repo, request.Revision);
        string oid = answer.Json?["commitOid"]?.GetValue<string>() ?? throw new HubException($"push {request.Repo.Describe}: the commit answer has no commitOid");
        return (oid, answer.Json?["commitUrl"]?.GetValue<string>() ?? "");
    }

    /// <summary>A read-only window of <paramref name="length"/> bytes from the current position (one multipart part).</summary>
    private sealed class BoundedStream(Stream inner, long size) : Stream
    {
        private readonly long length = size;
        private long left = size;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => length - left; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (left <= 0) return 0;
            int n = inner.Read(buffer, offset, (int)Math.Min(count, left));
            left -= n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
