using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SharpTune.Hub;

/// <summary>What HEAD on resolve/REV/FILE tells (get_hf_file_metadata): commit, normalized ETag, size, and whether it is an LFS file.</summary>
public sealed record HubFileMetadata(string Commit, string Etag, long Size, bool IsLfs);

/// <summary>A repo's file list at one commit (repo_info: /api/{models|datasets}/ID/revision/REV).</summary>
public sealed record HubRepoInfo(string Sha, IReadOnlyList<string> Files);

/// <summary>A hub API answer: status, parsed JSON body (null when empty or not JSON) and the ETag header (multipart parts).</summary>
public sealed record HubAnswer(int Status, JsonNode? Json, string? Etag);

/// <summary>The hub could not be reached at all (DNS, refused, timeout): callers fall back to the cache.</summary>
public sealed class HubUnreachableException(string message, Exception inner) : Exception(message, inner);

/// <summary>
/// The hub's HTTP API as huggingface_hub 0.24 calls it: headers of utils/_headers.py (user-agent, Bearer token), redirects
/// followed by hand (HEAD only relative ones, like get_hf_file_metadata; the token is dropped when a redirect leaves the
/// hub's host, as requests does), retries with exponential back-off on 429/5xx (Retry-After honoured), and the hub's
/// X-Error-Code answers turned into one-line messages.
/// </summary>
public sealed class HubClient : IDisposable
{
    private readonly HttpClient http;
    private readonly Uri endpoint;

    public HubSettings Settings { get; }

    public HubClient(HubSettings settings)
    {
        Settings = settings;
        endpoint = new Uri(settings.Endpoint + "/");
        http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = Timeout.InfiniteTimeSpan, // per-request timeouts below; a long body read is not a timeout
        };
    }

    public void Dispose() => http.Dispose();

    public string Url(string relative) => Settings.Endpoint + "/" + relative;

    /// <summary>huggingface_hub's quote(revision, safe=""): "refs/convert/parquet" → "refs%2Fconvert%2Fparquet".</summary>
    public static string QuoteRevision(string revision) => Uri.EscapeDataString(revision);

    /// <summary>quote(filename): each path part escaped, slashes kept.</summary>
    public static string QuotePath(string path) => string.Join('/', path.Split('/').Select(Uri.EscapeDataString));

    public string ResolveUrl(HubRepo repo, string revision, string file) =>
        Url($"{repo.UrlPrefix}{repo.Id}/resolve/{QuoteRevision(revision)}/{QuotePath(file)}");

    public HubRepoInfo RepoInfo(HubRepo repo, string revision)
    {
        using var response = Send(() => new HttpRequestMessage(HttpMethod.Get, Url($"api/{repo.ApiSegment}/{repo.Id}/revision/{QuoteRevision(revision)}")),
            followRedirects: true, repo, revision, file: null);
        var json = ReadJson(response);
        string sha = json["sha"]?.GetValue<string>() ?? throw new HubException($"{repo.Describe}: the hub's repo info has no commit sha ({response.RequestMessage?.RequestUri})");
        var files = (json["siblings"] as JsonArray ?? []).Select(s => s?["rfilename"]?.GetValue<string>()).OfType<string>().ToList();
        return new HubRepoInfo(sha, files);
    }

    /// <summary>HEAD resolve/REV/FILE with Accept-Encoding: identity (so Content-Length is the file size).</summary>
    public HubFileMetadata FileMetadata(HubRepo repo, string revision, string file)
    {
        string url = ResolveUrl(repo, revision, file);
        using var response = Send(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Head, url);
            request.Headers.AcceptEncoding.ParseAdd("identity");
            return request;
        }, followRedirects: false, repo, revision, file);
        string? commit = Header(response, "X-Repo-Commit");
        string? linkedEtag = Header(response, "X-Linked-Etag");
        string? etag = linkedEtag ?? Header(response, "ETag");
        string? sizeText = Header(response, "X-Linked-Size") ?? response.Content.Headers.ContentLength?.ToString();
        if (commit is null || etag is null || !long.TryParse(sizeText, out long size))
            throw new HubException($"{repo.Describe}: {url} did not answer with X-Repo-Commit, ETag and a size; is HF_ENDPOINT ({Settings.Endpoint}) a Hugging Face hub?");
        return new HubFileMetadata(commit, NormalizeEtag(etag), size, linkedEtag != null);
    }

    /// <summary>GET with "Range: bytes=FROM-" when resuming; follows every redirect (the CDN of LFS files).</summary>
    public HttpResponseMessage Get(HubRepo repo, string revision, string file, long from)
    {
        string url = ResolveUrl(repo, revision, file);
        return Send(() =>
        {
            var request = new HttpRequestMessage(HttpMethod.Get, url);
            if (from > 0) request.Headers.Range = new RangeHeaderValue(from, null);
            return request;
        }, followRedirects: true, repo, revision, file, streamBody: true);
    }

    /// <summary>Sends a body (made afresh for each attempt) to a hub API path (POST/PUT), returning the parsed JSON answer (or null when empty).</summary>
    public HubAnswer SendJson(HttpMethod method, string url, Func<HttpContent>? body, HubRepo repo, string? revision, IDictionary<string, string>? headers = null,
        Func<HttpResponseMessage, bool>? accept = null)
    {
        using var response = Send(() =>
        {
            var request = new HttpRequestMessage(method, url) { Content = body?.Invoke() };
            foreach (var (k, v) in headers ?? new Dictionary<string, string>()) request.Headers.TryAddWithoutValidation(k, v);
            return request;
        }, followRedirects: true, repo, revision, file: null, accept: accept);
        string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
        return new HubAnswer((int)response.StatusCode, string.IsNullOrWhiteSpace(text) || !LooksLikeJson(text) ? null : Parse(text, url), Header(response, "ETag"));
    }

    private static bool LooksLikeJson(string text) => text.TrimStart() is ['{', ..] or ['[', ..];

    /// <summary>Sends, follows redirects, retries 429/5xx and dropped connections, and maps error answers to messages.</summary>
    private HttpResponseMessage Send(Func<HttpRequestMessage> make, bool followRedirects, HubRepo repo, string? revision, string? file,
        bool streamBody = false, Func<HttpResponseMessage, bool>? accept = null)
    {
        for (int attempt = 1; ; attempt++)
        {
            HttpResponseMessage response;
            try
            {
                response = SendFollowing(make, followRedirects, streamBody);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                // Nothing answered: the caller decides (cache fallback); retrying a refused connection only delays that.
                if (attempt >= 2 || e is HttpRequestException { HttpRequestError: HttpRequestError.NameResolutionError or HttpRequestError.ConnectionError })
                    throw new HubUnreachableException($"cannot reach {Settings.Endpoint} ({OneLine(e)})", e);
                Thread.Sleep(Settings.RetryDelay);
                continue;
            }
            int status = (int)response.StatusCode;
            if (accept?.Invoke(response) == true || response.IsSuccessStatusCode || (status is >= 300 and < 400 && !followRedirects)) return response;
            if ((status == 429 || status >= 500) && attempt < Settings.MaxAttempts)
            {
                var wait = response.Headers.RetryAfter?.Delta ?? Settings.RetryDelay * Math.Pow(2, attempt - 1);
                response.Dispose();
                Thread.Sleep(wait > TimeSpan.FromSeconds(60) ? TimeSpan.FromSeconds(60) : wait);
                continue;
            }
            using (response) throw ErrorFor(response, repo, revision, file, attempt);
        }
    }

    private HttpResponseMessage SendFollowing(Func<HttpRequestMessage> make, bool followAll, bool streamBody)
    {
        var request = make();
        bool sameHost = request.RequestUri is { } first && (!first.IsAbsoluteUri || (first.Host == endpoint.Host && first.Port == endpoint.Port));
        for (int hop = 0; ; hop++)
        {
            if (sameHost && Settings.Token is { } token) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
            request.Headers.UserAgent.ParseAdd($"sharptune/{typeof(HubClient).Assembly.GetName().Version?.ToString(3)}");
            request.Headers.UserAgent.ParseAdd("hf_hub/0.24.0");
            using var timeout = new CancellationTokenSource(Settings.Timeout);
            var response = http.SendAsync(request, streamBody ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead, timeout.Token)
                .GetAwaiter().GetResult();
            int status = (int)response.StatusCode;
            if (status is < 300 or >= 400 || response.Headers.Location is not { } location || hop >= 10) return response;
            bool relative = !location.IsAbsoluteUri;
            if (!followAll && !relative) return response;
            var next = relative ? new Uri(request.RequestUri!, location) : location;
            sameHost = sameHost && next.Host == endpoint.Host && next.Port == endpoint.Port;
            var follow = new HttpRequestMessage(request.Method == HttpMethod.Head ? HttpMethod.Head : HttpMethod.Get, next);
            foreach (var h in request.Headers.Where(h => h.Key is "Range" or "Accept-Encoding")) follow.Headers.TryAddWithoutValidation(h.Key, h.Value);
            response.Dispose();
            request = follow;
        }
    }

    /// <summary>One line per hub answer, as hf_raise_for_status distinguishes them (X-Error-Code), with the fix.</summary>
    private Exception ErrorFor(HttpResponseMessage response, HubRepo repo, string? revision, string? file, int attempts)
    {
        int status = (int)response.StatusCode;
        string? code = Header(response, "X-Error-Code");
        string serverMessage = Header(response, "X-Error-Message") ?? "";
        string url = response.RequestMessage?.RequestUri?.ToString() ?? Settings.Endpoint;
        string where = $"{repo.Describe}{(revision is null ? "" : $"@{revision}")}";
        bool hasToken = Settings.Token != null;
        if (code == "GatedRepo" || status == 401 || (status == 403 && code != "RepoNotFound"))
        {
            if (!hasToken)
                return new InvalidInputException($"{where}: {status} {response.ReasonPhrase} from {Settings.Endpoint}: the repo is gated or private and needs a token; {HubSettings.TokenHint}" +
                                                 (code == "GatedRepo" ? $" (after accepting its terms at {Settings.Endpoint}/{repo.UrlPrefix}{repo.Id})" : ""));
            return new InvalidInputException($"{where}: {status} {response.ReasonPhrase} from {Settings.Endpoint}: the token was refused for this repo" +
                (code == "GatedRepo" ? $"; request access at {Settings.Endpoint}/{repo.UrlPrefix}{repo.Id}" : "; check that HF_TOKEN is valid and has access (write access to push)") +
                (serverMessage.Length > 0 ? $" ({serverMessage})" : ""));
        }
        if (status == 404 || code is "RepoNotFound" or "RevisionNotFound" or "EntryNotFound")
            return code switch
            {
                "RevisionNotFound" => new InvalidInputException($"{where}: revision '{revision}' not found on {Settings.Endpoint}; expected a branch, tag or commit of the repo"),
                "EntryNotFound" => new InvalidInputException($"{where}: file '{file}' not found in the repo at revision {revision}"),
                _ when file != null && code is null => new InvalidInputException($"{where}: '{file}' not found ({url} answered 404)"),
                _ => new InvalidInputException($"{where}: repo not found on {Settings.Endpoint}; check the id and the repo type (--repo-type model|dataset)" +
                                               (hasToken ? "" : $"; a private repo needs a token ({HubSettings.TokenHint})")),
            };
        return new HubException($"{where}: {url} answered {status} {response.ReasonPhrase}" + (attempts > 1 ? $" after {attempts} attempts" : "") +
                                (serverMessage.Length > 0 ? $" ({serverMessage})" : ""));
    }

    /// <summary>Strips W/ and quotes (_normalize_etag).</summary>
    public static string NormalizeEtag(string etag)
    {
        string e = etag.Trim();
        if (e.StartsWith("W/", StringComparison.Ordinal)) e = e[2..];
        return e.Trim('"');
    }

    public static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values) ? values.FirstOrDefault() : null;

    private static JsonNode ReadJson(HttpResponseMessage response)
    {
        string text = response.Content.ReadAsStringAsync().GetAwaiter().GetResult();
        return Parse(text, response.RequestMessage?.RequestUri?.ToString() ?? "") ?? new JsonObject();
    }

    private static JsonNode? Parse(string text, string url)
    {
        try { return JsonNode.Parse(text); }
        catch (JsonException e) { throw new HubException($"{url}: the hub answered something that is not JSON ({e.Message.Split('.')[0]})"); }
    }

    private static string OneLine(Exception e)
    {
        var inner = e;
        while (inner.InnerException != null) inner = inner.InnerException;
        return (inner is TaskCanceledException ? "timed out" : inner.Message).Replace('\n', ' ');
    }

    public static StringContent JsonContent(JsonNode body, string mediaType = "application/json") =>
        new(body.ToJsonString(), Encoding.UTF8, mediaType);
}
