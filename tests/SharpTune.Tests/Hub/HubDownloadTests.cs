using System.Text;
using SharpTune.Hub;

namespace SharpTune.Tests.Hub;

/// <summary>
/// `sharptune download` and the resolver against a loopback hub: the cache layout of huggingface_hub 0.24 (see docs/hub.md),
/// no-op re-downloads, Range resume, sha256 rejection, 401/404 messages and offline mode.
/// </summary>
public sealed class HubDownloadTests
{
    internal static readonly string TinyChat = Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat");

    /// <summary>The bundled tiny chat model as a hub repo (weights in LFS), plus files the model resolver must skip.</summary>
    internal static Dictionary<string, HubFile> ModelFiles() => new()
    {
        [".gitattributes"] = new(Encoding.UTF8.GetBytes("*.safetensors filter=lfs diff=lfs merge=lfs -text\n"), false),
        ["config.json"] = new(File.ReadAllBytes(Path.Combine(TinyChat, "config.json")), false),
        ["generation_config.json"] = new(File.ReadAllBytes(Path.Combine(TinyChat, "generation_config.json")), false),
        ["tokenizer.json"] = new(File.ReadAllBytes(Path.Combine(TinyChat, "tokenizer.json")), false),
        ["tokenizer_config.json"] = new(File.ReadAllBytes(Path.Combine(TinyChat, "tokenizer_config.json")), false),
        ["model.safetensors"] = new(File.ReadAllBytes(Path.Combine(TinyChat, "model.safetensors")), true),
        ["onnx/model.onnx"] = new(new byte[4096], true),
        ["extra/notes.txt"] = new(Encoding.UTF8.GetBytes("nested file\n"), false),
    };

    private static string Weights => new HubFile(File.ReadAllBytes(Path.Combine(TinyChat, "model.safetensors")), true).Sha256;

    [Fact]
    public async Task Download_writes_the_huggingface_hub_cache_layout_and_a_second_run_fetches_nothing()
    {
        await using var hub = await LoopbackHub.StartAsync();
        var files = ModelFiles();
        string commit = hub.AddRepo("model", "acme/tiny-chat", files);
        using var env = new HubEnvironment(hub.Endpoint, token: hub.Token);
        var (code, stdout, stderr) = CliRunner.Run("download", "acme/tiny-chat");
        Assert.True(code == 0, stderr);

        string repo = Path.Combine(env.Cache, "models--acme--tiny-chat");
        Assert.Equal(commit, File.ReadAllText(Path.Combine(repo, "refs", "main"))); // the commit, no newline
        Assert.Equal(Path.Combine(repo, "snapshots", commit), stdout.Trim().Split('\n')[^1]);
        foreach (var (path, file) in files)
        {
            string pointer = Path.Combine(repo, "snapshots", commit, path);
            string etag = file.Lfs ? file.Sha256 : file.GitSha1; // X-Linked-Etag for LFS files, else the ETag (git blob id)
            string depth = string.Concat(Enumerable.Repeat("../", path.Count(c => c == '/') + 2));
            Assert.Equal($"{depth}blobs/{etag}", new FileInfo(pointer).LinkTarget);
            Assert.Equal(file.Bytes, File.ReadAllBytes(Path.Combine(repo, "blobs", etag)));
            Assert.True(File.Exists(Path.Combine(env.Cache, ".locks", "models--acme--tiny-chat", etag + ".lock")), etag);
        }
        Assert.Equal(files.Count, Directory.GetFiles(Path.Combine(repo, "blobs")).Length);
        Assert.Empty(Directory.GetFiles(env.Cache, "*.incomplete", SearchOption.AllDirectories));
        // LFS bodies come from the "CDN" host: the token stays with the hub, as requests drops it on a cross-host redirect.
        var cdn = hub.Requests.Where(r => r.Path.StartsWith("/lfs-cdn/") && r.Method == "GET").ToList();
        Assert.Equal(2, cdn.Count);
        Assert.All(cdn, r => Assert.Null(r.Authorization));
        Assert.All(hub.Requests.Where(r => r.Host == "127.0.0.1"), r => Assert.Equal($"Bearer {hub.Token}", r.Authorization));

        hub.Requests.Clear();
        (code, stdout, stderr) = CliRunner.Run("download", "acme/tiny-chat");
        Assert.True(code == 0, stderr);
        var again = Assert.Single(hub.Requests); // only the repo info; no HEAD, no file body
        Assert.Equal(("GET", "/api/models/acme/tiny-chat/revision/main"), (again.Method, again.Path));
        Assert.Contains("0 fetched", stdout);
    }

    [Fact]
    public async Task Model_resolver_fetches_only_top_level_model_files_and_a_revision_by_name()
    {
        await using var hub = await LoopbackHub.StartAsync();
        hub.AddRepo("model", "acme/tiny-chat", ModelFiles());
        var v2 = ModelFiles();
        v2["config.json"] = new(Encoding.UTF8.GetBytes(File.ReadAllText(Path.Combine(TinyChat, "config.json")).Replace("}", ", \"note\": \"v2\"}")), false);
        string v2Commit = hub.AddRepo("model", "acme/tiny-chat", v2, branch: "v2");
        using var env = new HubEnvironment(hub.Endpoint);
        string folder = ModelLocator.Resolve("acme/tiny-chat", "v2");
        Assert.EndsWith(Path.Combine("snapshots", v2Commit), folder);
        Assert.Equal(v2Commit, File.ReadAllText(Path.Combine(env.Cache, "models--acme--tiny-chat", "refs", "v2")));
        var got = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f)).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(["config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"], got);
        Assert.Contains("\"v2\"", File.ReadAllText(Path.Combine(folder, "config.json")));
    }

    [Fact]
    public async Task An_interrupted_download_resumes_with_a_range_request()
    {
        await using var hub = await LoopbackHub.StartAsync();
        var files = ModelFiles();
        string commit = hub.AddRepo("model", "acme/tiny-chat", files);
        using var env = new HubEnvironment(hub.Endpoint);
        byte[] weights = files["model.safetensors"].Bytes;

        // 1. A partial blob left by an earlier run (ours or huggingface_hub's) is continued, not restarted.
        string blobs = Path.Combine(env.Cache, "models--acme--tiny-chat", "blobs");
        Directory.CreateDirectory(blobs);
        int half = weights.Length / 2;
        File.WriteAllBytes(Path.Combine(blobs, Weights + ".incomplete"), weights[..half]);
        var (code, _, stderr) = CliRunner.Run("download", "acme/tiny-chat", "--include", "model.safetensors");
        Assert.True(code == 0, stderr);
        var get = Assert.Single(hub.Requests, r => r.Path == $"/lfs-cdn/{Weights}" && r.Method == "GET");
        Assert.Equal($"bytes={half}-", get.Range);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(env.Cache, "models--acme--tiny-chat", "snapshots", commit, "model.safetensors")));

        // 2. A connection that drops mid-body is retried from the byte where it stopped.
        string cache2 = TestPaths.TempDir();
        hub.Requests.Clear();
        hub.DropAfter[Weights] = 100_000;
        var settings = HubSettings.FromEnvironment() with { Cache = cache2, RetryDelay = TimeSpan.FromMilliseconds(10) };
        var result = new SnapshotDownloader(settings).Download(new DownloadRequest(new HubRepo("acme/tiny-chat", RepoType.Model)) { Include = ["model.safetensors"] });
        var gets = hub.Requests.Where(r => r.Path == $"/lfs-cdn/{Weights}" && r.Method == "GET").ToList();
        // The server aborts the connection after sending 100 000 bytes; an abortive close may discard some of them
        // before they reach the client, so the retry starts at whatever byte the client actually holds — never past
        // the cut, never from 0 — and no byte is fetched twice.
        Assert.Equal(2, gets.Count);
        Assert.Equal("", gets[0].Range ?? "");
        Assert.Matches(@"^bytes=\d+-$", gets[1].Range ?? "");
        long resumedFrom = long.Parse(gets[1].Range![6..^1]);
        Assert.InRange(resumedFrom, 1, 100_000);
        Assert.Equal(weights, File.ReadAllBytes(Path.Combine(result.Folder, "model.safetensors")));
        Assert.Equal(weights.Length, result.BytesFetched);
    }

    [Fact]
    public async Task A_blob_failing_its_sha256_is_rejected_and_nothing_is_linked()
    {
        await using var hub = await LoopbackHub.StartAsync();
        string commit = hub.AddRepo("model", "acme/tiny-chat", ModelFiles());
        using var env = new HubEnvironment(hub.Endpoint);
        hub.Corrupt[Weights] = true;
        var (code, _, stderr) = CliRunner.Run("download", "acme/tiny-chat");
        Assert.Equal(1, code);
        Assert.Contains($"model.safetensors failed its sha256 check (expected {Weights}, got ", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        string repo = Path.Combine(env.Cache, "models--acme--tiny-chat");
        Assert.False(File.Exists(Path.Combine(repo, "snapshots", commit, "model.safetensors")));
        Assert.False(new FileInfo(Path.Combine(repo, "snapshots", commit, "model.safetensors")).Exists);
        Assert.False(File.Exists(Path.Combine(repo, "blobs", Weights)));
        Assert.Empty(Directory.GetFiles(env.Cache, "*.incomplete", SearchOption.AllDirectories));

        hub.Corrupt.Clear(); // the next run fetches it cleanly
        (code, _, stderr) = CliRunner.Run("download", "acme/tiny-chat");
        Assert.True(code == 0, stderr);
        Assert.True(File.Exists(Path.Combine(repo, "snapshots", commit, "model.safetensors")));
    }

    [Fact]
    public async Task Gated_repos_without_a_token_and_missing_repos_or_revisions_give_one_line_messages()
    {
        await using var hub = await LoopbackHub.StartAsync();
        hub.AddRepo("model", "acme/gated", ModelFiles(), gated: true);
        using (new HubEnvironment(hub.Endpoint))
        {
            var (code, _, stderr) = CliRunner.Run("download", "acme/gated");
            Assert.Equal(2, code);
            Assert.StartsWith("error: acme/gated@main: 401 Unauthorized from http://127.0.0.1:", stderr);
            Assert.Contains("the repo is gated or private and needs a token; set HF_TOKEN=hf_... or write the token to ", stderr);

            (code, _, stderr) = CliRunner.Run("download", "acme/nothing-here");
            Assert.Equal(2, code);
            Assert.Contains("acme/nothing-here@main: repo not found on http://127.0.0.1:", stderr);

            (code, _, stderr) = CliRunner.Run("download", "acme/gated", "--repo-type", "dataset");
            Assert.Equal(2, code);
            Assert.Contains("dataset acme/gated@main: repo not found", stderr);
        }
        using (new HubEnvironment(hub.Endpoint, token: "hf_wrong"))
        {
            var (code, _, stderr) = CliRunner.Run("download", "acme/gated");
            Assert.Equal(2, code);
            Assert.Contains("the token was refused for this repo; request access at", stderr);
        }
        using (var env = new HubEnvironment(hub.Endpoint))
        {
            // The token file under HF_HOME is read as huggingface_hub reads it.
            File.WriteAllText(Path.Combine(env.Home, "token"), hub.Token + "\n");
            var (code, _, stderr) = CliRunner.Run("download", "acme/gated", "--revision", "no-such-branch");
            Assert.Equal(2, code);
            Assert.Equal("error: acme/gated@no-such-branch: revision 'no-such-branch' not found on " + hub.Endpoint + "; expected a branch, tag or commit of the repo\n", stderr);
            (code, _, stderr) = CliRunner.Run("download", "acme/gated");
            Assert.True(code == 0, stderr);
        }
    }

    [Fact]
    public async Task Server_errors_are_retried_with_back_off()
    {
        await using var hub = await LoopbackHub.StartAsync();
        hub.AddRepo("model", "acme/tiny-chat", ModelFiles());
        using var env = new HubEnvironment(hub.Endpoint);
        var settings = HubSettings.FromEnvironment() with { RetryDelay = TimeSpan.FromMilliseconds(5) };
        hub.FailNext = 3;
        var result = new SnapshotDownloader(settings).Download(new DownloadRequest(new HubRepo("acme/tiny-chat", RepoType.Model)) { Include = ["config.json"] });
        Assert.Equal(["config.json"], result.Files);
        Assert.Equal(3 + 3, hub.Requests.Count); // three 503s, then repo info, HEAD and GET
        hub.FailNext = 100;
        var error = Assert.Throws<HubException>(() => new SnapshotDownloader(settings with { Cache = TestPaths.TempDir() })
            .Download(new DownloadRequest(new HubRepo("acme/tiny-chat", RepoType.Model))));
        Assert.EndsWith("answered 503 Service Unavailable after 5 attempts", error.Message);
    }

    [Fact]
    public async Task Offline_mode_uses_the_cache_and_names_what_is_missing()
    {
        await using var hub = await LoopbackHub.StartAsync();
        string commit = hub.AddRepo("model", "acme/tiny-chat", ModelFiles());
        using var env = new HubEnvironment(hub.Endpoint);
        Assert.Equal(0, CliRunner.Run("download", "acme/tiny-chat", "--include", "*.json").Code);
        hub.Requests.Clear();
        env.Offline = true;
        var (code, stdout, stderr) = CliRunner.Run("download", "acme/tiny-chat", "--include", "config.json");
        Assert.True(code == 0, stderr);
        Assert.Contains("1 file(s) from the cache (offline)", stdout);
        Assert.Equal(Path.Combine(env.Cache, "models--acme--tiny-chat", "snapshots", commit), ModelLocator.Resolve("acme/tiny-chat"));
        Assert.Empty(hub.Requests);

        (code, _, stderr) = CliRunner.Run("download", "acme/tiny-chat", "--include", "model.safetensors");
        Assert.Equal(2, code);
        Assert.Equal($"error: acme/tiny-chat@main: model.safetensors is not in the cached snapshot {Path.Combine(env.Cache, "models--acme--tiny-chat", "snapshots", commit)} and HF_HUB_OFFLINE is set, so nothing is fetched\n", stderr);
        (code, _, stderr) = CliRunner.Run("download", "acme/other");
        Assert.Equal(2, code);
        Assert.Contains("acme/other@main: not in the cache", stderr);
        Assert.Empty(hub.Requests);
    }

    [Fact]
    public async Task Local_dir_holds_plain_files_and_huggingface_hub_metadata()
    {
        await using var hub = await LoopbackHub.StartAsync();
        var files = ModelFiles();
        string commit = hub.AddRepo("model", "acme/tiny-chat", files);
        using var env = new HubEnvironment(hub.Endpoint);
        string dir = Path.Combine(TestPaths.TempDir(), "tiny");
        var (code, _, stderr) = CliRunner.Run("download", "acme/tiny-chat", "--local-dir", dir, "--exclude", "onnx/*");
        Assert.True(code == 0, stderr);
        Assert.Equal(files["model.safetensors"].Bytes, File.ReadAllBytes(Path.Combine(dir, "model.safetensors")));
        Assert.Null(new FileInfo(Path.Combine(dir, "model.safetensors")).LinkTarget);
        Assert.False(File.Exists(Path.Combine(dir, "onnx", "model.onnx")));
        var metadata = File.ReadAllLines(Path.Combine(dir, ".cache", "huggingface", "download", "model.safetensors.metadata"));
        Assert.Equal([commit, Weights], metadata[..2]);
        Assert.Equal("*", File.ReadAllText(Path.Combine(dir, ".cache", "huggingface", ".gitignore")));
        Assert.False(Directory.Exists(env.Cache));
    }
}
