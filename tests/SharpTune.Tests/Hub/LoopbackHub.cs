using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SharpTune.Tests.Hub;

/// <summary>One file of a loopback repo: its bytes and whether the hub stores it in LFS.</summary>
internal sealed record HubFile(byte[] Bytes, bool Lfs)
{
    public string Sha256 => Convert.ToHexStringLower(SHA256.HashData(Bytes));
    /// <summary>What git stores for an LFS file (the spec's pointer text).</summary>
    public byte[] Pointer => Encoding.UTF8.GetBytes($"version https://git-lfs.github.com/spec/v1\noid sha256:{Sha256}\nsize {Bytes.Length}\n");
    /// <summary>The git blob id: sha1("blob SIZE\0" + content) of what git stores.</summary>
    public string GitSha1 => GitBlobId(Lfs ? Pointer : Bytes);

    public static string GitBlobId(byte[] content) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {content.Length}\0"), .. content]));
}

/// <summary>A request the loopback hub answered (for assertions on what the client asked).</summary>
internal sealed record HubRequest(string Method, string Path, string? Range, string? Authorization, string Host);

/// <summary>
/// A Hugging Face Hub on 127.0.0.1 for tests, written from the hub's documented HTTP API: repo info
/// (/api/{models|datasets}/ID/revision/REV), resolve/REV/PATH (ETag, X-Repo-Commit; LFS files answer 302 to a "CDN" on
/// another host name with X-Linked-Etag / X-Linked-Size; Range requests answer 206), X-Error-Code errors (RepoNotFound,
/// RevisionNotFound, EntryNotFound, GatedRepo), and the upload side: /api/repos/create, preupload, the LFS batch API
/// (basic transfer + verify) and the NDJSON commit endpoint.
/// </summary>
internal sealed class LoopbackHub : IAsyncDisposable
{
    private sealed class Repo
    {
        public required string Type { get; init; }
        public required string Id { get; init; }
        public bool Gated { get; set; }
        public bool Private { get; set; }
        public Dictionary<string, string> Branches { get; } = [];
        public Dictionary<string, Dictionary<string, HubFile>> Commits { get; } = [];
    }

    private readonly WebApplication app;
    private readonly ConcurrentDictionary<string, Repo> repos = new();
    private readonly ConcurrentDictionary<string, byte[]> lfs = new();
    private int commitCounter;

    public ConcurrentQueue<HubRequest> Requests { get; } = new();
    /// <summary>Token that gated repos and every write need.</summary>
    public string Token { get; } = "hf_loopback_write_token";
    /// <summary>LFS objects (sha256) served with one byte changed.</summary>
    public ConcurrentDictionary<string, bool> Corrupt { get; } = new();
    /// <summary>LFS objects whose next body is cut off after this many bytes (the connection drops).</summary>
    public ConcurrentDictionary<string, int> DropAfter { get; } = new();
    /// <summary>Answer the next N requests with 503 (retry path).</summary>
    public int FailNext;

    public string Endpoint { get; private set; } = "";

    private LoopbackHub()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => { k.Listen(IPAddress.Loopback, 0); k.Limits.MaxRequestBodySize = null; });
        app = builder.Build();
        app.Run(Handle);
    }

    public static async Task<LoopbackHub> StartAsync()
    {
        var hub = new LoopbackHub();
        await hub.app.StartAsync();
        hub.Endpoint = hub.app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return hub;
    }

    public async ValueTask DisposeAsync() => await app.DisposeAsync();

    private string CdnBase => Endpoint.Replace("127.0.0.1", "localhost");

    /// <summary>Adds (or replaces) a branch of a repo holding exactly <paramref name="files"/>; returns the commit sha.</summary>
    public string AddRepo(string type, string id, IReadOnlyDictionary<string, HubFile> files, string branch = "main", bool gated = false)
    {
        var repo = repos.GetOrAdd(Key(type, id), _ => new Repo { Type = type, Id = id });
        repo.Gated |= gated;
        return Commit(repo, branch, new Dictionary<string, HubFile>(files));
    }

    /// <summary>The files of a branch as the hub holds them now (LFS content from the LFS store).</summary>
    public IReadOnlyDictionary<string, HubFile>? Files(string type, string id, string branch = "main") =>
        repos.TryGetValue(Key(type, id), out var r) && r.Branches.TryGetValue(branch, out var sha) ? r.Commits[sha] : null;

    public bool IsPrivate(string type, string id) => repos.TryGetValue(Key(type, id), out var r) && r.Private;

    private string Commit(Repo repo, string branch, Dictionary<string, HubFile> files)
    {
        string sha = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes($"{repo.Id}:{branch}:{Interlocked.Increment(ref commitCounter)}")));
        foreach (var f in files.Values.Where(f => f.Lfs)) lfs[f.Sha256] = f.Bytes;
        lock (repo)
        {
            repo.Commits[sha] = files;
            repo.Branches[branch] = sha;
        }
        return sha;
    }

    private static string Key(string type, string id) => $"{type}:{id}";

    private async Task Handle(HttpContext ctx)
    {
        string raw = ctx.Features.Get<IHttpRequestFeature>()!.RawTarget;
        string pathPart = raw.Split('?')[0];
        var seg = pathPart.Trim('/').Split('/').Select(Uri.UnescapeDataString).ToArray();
        Requests.Enqueue(new HubRequest(ctx.Request.Method, pathPart, ctx.Request.Headers.Range.ToString() is { Length: > 0 } r ? r : null,
            ctx.Request.Headers.Authorization.ToString() is { Length: > 0 } a ? a : null, ctx.Request.Host.Host));
        if (Interlocked.Decrement(ref FailNext) >= 0)
        {
            ctx.Response.StatusCode = 503;
            return;
        }
        string method = ctx.Request.Method;
        if (seg is ["api", "repos", "create"] && method == "POST") { await CreateRepo(ctx); return; }
        if (seg is ["api", "models" or "datasets", _, _, "revision", _] && method == "GET") { await RepoInfo(ctx, seg[1][..^1], $"{seg[2]}/{seg[3]}", seg[5]); return; }
        if (seg is ["api", "models" or "datasets", _, _, "preupload", _] && method == "POST") { await Preupload(ctx, seg[1][..^1], $"{seg[2]}/{seg[3]}"); return; }
        if (seg is ["api", "models" or "datasets", _, _, "commit", _] && method == "POST") { await CommitEndpoint(ctx, seg[1][..^1], $"{seg[2]}/{seg[3]}", seg[5]); return; }
        if (seg is ["lfs-cdn", _]) { await Cdn(ctx, seg[1]); return; }
        if (seg is ["lfs-upload", _] && method == "PUT") { await LfsPut(ctx, seg[1]); return; }
        if (seg is ["lfs-verify"] && method == "POST") { await LfsVerify(ctx); return; }
        var rest = seg is ["datasets", ..] ? seg[1..] : seg;
        string type = seg is ["datasets", ..] ? "dataset" : "model";
        if (rest.Length == 6 && rest[2] == "info" && rest[3] == "lfs" && rest[1].EndsWith(".git") && method == "POST")
        {
            await LfsBatch(ctx, type, $"{rest[0]}/{rest[1][..^4]}");
            return;
        }
        if (rest.Length >= 5 && rest[2] == "resolve" && method is "GET" or "HEAD")
        {
            await Resolve(ctx, type, $"{rest[0]}/{rest[1]}", rest[3], string.Join('/', rest[4..]));
            return;
        }
        ctx.Response.StatusCode = 404;
    }

    private static void Error(HttpContext ctx, int status, string code, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.Headers["X-Error-Code"] = code;
        ctx.Response.Headers["X-Error-Message"] = message;
    }

    private bool Authorized(HttpContext ctx) => ctx.Request.Headers.Authorization.ToString() == $"Bearer {Token}";

    /// <summary>The repo and commit a read names, or null after writing the error answer.</summary>
    private (Repo Repo, string Sha)? Find(HttpContext ctx, string type, string id, string revision)
    {
        if (!repos.TryGetValue(Key(type, id), out var repo)) { Error(ctx, 404, "RepoNotFound", "Repository not found"); return null; }
        if ((repo.Gated || repo.Private) && !Authorized(ctx))
        {
            Error(ctx, 401, "GatedRepo", $"Access to {type} {id} is restricted. You must be authenticated to access it.");
            return null;
        }
        lock (repo)
        {
            if (repo.Branches.TryGetValue(revision, out var sha)) return (repo, sha);
            if (repo.Commits.ContainsKey(revision)) return (repo, revision);
        }
        Error(ctx, 404, "RevisionNotFound", $"Invalid rev id: {revision}");
        return null;
    }

    private async Task RepoInfo(HttpContext ctx, string type, string id, string revision)
    {
        if (Find(ctx, type, id, revision) is not { } found) return;
        var files = found.Repo.Commits[found.Sha];
        var body = new JsonObject
        {
            ["id"] = id, ["sha"] = found.Sha, ["private"] = found.Repo.Private, ["gated"] = found.Repo.Gated,
            ["siblings"] = new JsonArray(files.Keys.Order(StringComparer.Ordinal).Select(k => (JsonNode)new JsonObject { ["rfilename"] = k }).ToArray()),
        };
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(body.ToJsonString());
    }

    private async Task Resolve(HttpContext ctx, string type, string id, string revision, string path)
    {
        if (Find(ctx, type, id, revision) is not { } found) return;
        if (!found.Repo.Commits[found.Sha].TryGetValue(path, out var file)) { Error(ctx, 404, "EntryNotFound", $"{path} does not exist on \"{revision}\""); return; }
        var h = ctx.Response.Headers;
        h["X-Repo-Commit"] = found.Sha;
        h.ETag = $"\"{file.GitSha1}\"";
        if (file.Lfs)
        {
            h["X-Linked-Etag"] = $"\"{file.Sha256}\"";
            h["X-Linked-Size"] = file.Bytes.Length.ToString();
            h.Location = $"{CdnBase}/lfs-cdn/{file.Sha256}";
            ctx.Response.StatusCode = 302;
            return;
        }
        ctx.Response.ContentLength = file.Bytes.Length;
        if (ctx.Request.Method == "GET") await ctx.Response.Body.WriteAsync(file.Bytes);
    }

    private async Task Cdn(HttpContext ctx, string oid)
    {
        if (!lfs.TryGetValue(oid, out var bytes)) { ctx.Response.StatusCode = 404; return; }
        if (Corrupt.ContainsKey(oid))
        {
            bytes = (byte[])bytes.Clone();
            bytes[bytes.Length / 2] ^= 0x5A;
        }
        long from = 0;
        if (ctx.Request.Headers.Range.ToString() is { Length: > 0 } range && range.StartsWith("bytes=") && range.EndsWith('-'))
        {
            from = long.Parse(range[6..^1]);
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {from}-{bytes.Length - 1}/{bytes.Length}";
        }
        ctx.Response.ContentLength = bytes.Length - from;
        if (ctx.Request.Method == "HEAD") return;
        if (DropAfter.TryRemove(oid, out int cut))
        {
            await ctx.Response.Body.WriteAsync(bytes.AsMemory((int)from, Math.Min(cut, bytes.Length - (int)from)));
            await ctx.Response.Body.FlushAsync();
            ctx.Abort();
            return;
        }
        await ctx.Response.Body.WriteAsync(bytes.AsMemory((int)from));
    }

    private async Task CreateRepo(HttpContext ctx)
    {
        if (!Authorized(ctx)) { Error(ctx, 401, "Unauthorized", "Invalid credentials in Authorization header"); return; }
        var body = JsonNode.Parse(await new StreamReader(ctx.Request.Body).ReadToEndAsync())!;
        string name = body["name"]!.GetValue<string>();
        string id = body["organization"]?.GetValue<string>() is { } org ? $"{org}/{name}" : name;
        string type = body["type"]?.GetValue<string>() ?? "model";
        if (repos.ContainsKey(Key(type, id)))
        {
            ctx.Response.StatusCode = 409;
            await ctx.Response.WriteAsync(new JsonObject { ["error"] = "You already created this model repo", ["url"] = $"{Endpoint}/{id}" }.ToJsonString());
            return;
        }
        var repo = repos.GetOrAdd(Key(type, id), _ => new Repo { Type = type, Id = id });
        repo.Private = body["private"]?.GetValue<bool>() ?? false;
        Commit(repo, "main", new Dictionary<string, HubFile> { [".gitattributes"] = new(Encoding.UTF8.GetBytes("*.safetensors filter=lfs diff=lfs merge=lfs -text\n"), false) });
        await ctx.Response.WriteAsync(new JsonObject { ["url"] = $"{Endpoint}/{id}" }.ToJsonString());
    }

    /// <summary>LFS for *.safetensors/*.bin/*.parquet (the default .gitattributes), anything over 1 MB, and binary samples.</summary>
    private async Task Preupload(HttpContext ctx, string type, string id)
    {
        if (!Authorized(ctx)) { Error(ctx, 401, "Unauthorized", "Invalid credentials in Authorization header"); return; }
        if (!repos.ContainsKey(Key(type, id))) { Error(ctx, 404, "RepoNotFound", "Repository not found"); return; }
        var body = JsonNode.Parse(await new StreamReader(ctx.Request.Body).ReadToEndAsync())!;
        var answer = new JsonArray();
        foreach (var f in body["files"]!.AsArray())
        {
            string path = f!["path"]!.GetValue<string>();
            long size = f["size"]!.GetValue<long>();
            byte[] sample = Convert.FromBase64String(f["sample"]!.GetValue<string>());
            bool isLfs = Path.GetExtension(path) is ".safetensors" or ".bin" or ".parquet" || size > 1 << 20 || sample.Contains((byte)0);
            answer.Add(new JsonObject { ["path"] = path, ["uploadMode"] = isLfs ? "lfs" : "regular", ["shouldIgnore"] = false });
        }
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(new JsonObject { ["files"] = answer }.ToJsonString());
    }

    private async Task LfsBatch(HttpContext ctx, string type, string id)
    {
        if (!Authorized(ctx)) { Error(ctx, 401, "Unauthorized", "Invalid credentials in Authorization header"); return; }
        var body = JsonNode.Parse(await new StreamReader(ctx.Request.Body).ReadToEndAsync())!;
        var objects = new JsonArray();
        foreach (var o in body["objects"]!.AsArray())
        {
            string oid = o!["oid"]!.GetValue<string>();
            long size = o["size"]!.GetValue<long>();
            var entry = new JsonObject { ["oid"] = oid, ["size"] = size };
            if (!lfs.ContainsKey(oid))
                entry["actions"] = new JsonObject
                {
                    ["upload"] = new JsonObject { ["href"] = $"{CdnBase}/lfs-upload/{oid}", ["header"] = new JsonObject { ["X-Upload-Ticket"] = oid[..8] } },
                    ["verify"] = new JsonObject { ["href"] = $"{Endpoint}/lfs-verify", ["header"] = new JsonObject { ["X-Verify-Ticket"] = oid[..8] } },
                };
            objects.Add(entry);
        }
        ctx.Response.ContentType = "application/vnd.git-lfs+json";
        await ctx.Response.WriteAsync(new JsonObject { ["transfer"] = "basic", ["objects"] = objects }.ToJsonString());
    }

    private async Task LfsPut(HttpContext ctx, string oid)
    {
        if (ctx.Request.Headers["X-Upload-Ticket"].ToString() != oid[..8]) { ctx.Response.StatusCode = 403; return; }
        using var buffer = new MemoryStream();
        await ctx.Request.Body.CopyToAsync(buffer);
        var bytes = buffer.ToArray();
        if (Convert.ToHexStringLower(SHA256.HashData(bytes)) != oid) { ctx.Response.StatusCode = 400; return; }
        lfs[oid] = bytes;
    }

    private async Task LfsVerify(HttpContext ctx)
    {
        var body = JsonNode.Parse(await new StreamReader(ctx.Request.Body).ReadToEndAsync())!;
        string oid = body["oid"]!.GetValue<string>();
        bool ok = ctx.Request.Headers["X-Verify-Ticket"].ToString() == oid[..8] && lfs.TryGetValue(oid, out var bytes) && bytes.Length == body["size"]!.GetValue<long>();
        ctx.Response.StatusCode = ok ? 200 : 404;
    }

    private async Task CommitEndpoint(HttpContext ctx, string type, string id, string revision)
    {
        if (!Authorized(ctx)) { Error(ctx, 401, "Unauthorized", "Invalid credentials in Authorization header"); return; }
        if (!ctx.Request.ContentType!.StartsWith("application/x-ndjson")) { ctx.Response.StatusCode = 415; return; }
        if (Find(ctx, type, id, revision) is not { } found) return;
        var files = new Dictionary<string, HubFile>(found.Repo.Commits[found.Sha]);
        string text = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        if (lines.Count == 0 || lines[0]["key"]?.GetValue<string>() != "header") { ctx.Response.StatusCode = 400; return; }
        foreach (var line in lines.Skip(1))
        {
            var value = line["value"]!;
            string path = value["path"]!.GetValue<string>();
            switch (line["key"]!.GetValue<string>())
            {
                case "file":
                    files[path] = new HubFile(Convert.FromBase64String(value["content"]!.GetValue<string>()), false);
                    break;
                case "lfsFile":
                    string oid = value["oid"]!.GetValue<string>();
                    if (!lfs.TryGetValue(oid, out var bytes) || value["algo"]?.GetValue<string>() != "sha256")
                    {
                        Error(ctx, 422, "LfsObjectMissing", $"lfs object {oid} of {path} was not uploaded");
                        return;
                    }
                    files[path] = new HubFile(bytes, true);
                    break;
                case "deletedFile":
                    files.Remove(path);
                    break;
                default:
                    ctx.Response.StatusCode = 400;
                    return;
            }
        }
        string sha = Commit(found.Repo, revision, files);
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(new JsonObject { ["success"] = true, ["commitOid"] = sha, ["commitUrl"] = $"{Endpoint}/{id}/commit/{sha}" }.ToJsonString());
    }
}
