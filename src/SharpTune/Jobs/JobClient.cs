using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using SharpTune.Config;

namespace SharpTune.Jobs;

/// <summary>The client side of the job API (`sharptune jobs submit|status|logs|cancel|list`).</summary>
public sealed class JobClient(Uri baseAddress, string? apiKey) : IDisposable
{
    private readonly HttpClient http = Create(baseAddress, apiKey);

    private static HttpClient Create(Uri baseAddress, string? apiKey)
    {
        var client = new HttpClient { BaseAddress = baseAddress, Timeout = Timeout.InfiniteTimeSpan };
        if (apiKey is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        return client;
    }

    /// <summary>
    /// A job request from a file: a JSON request ({"input": …}) as it is, or a plain config (.json or .yaml) wrapped as
    /// {"input": {"args": CONFIG}}. YAML scalars travel as strings; the server types each by its key, as for a file.
    /// </summary>
    public static JsonObject RequestFromFile(string path)
    {
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: not found");
        string text = File.ReadAllText(path);
        JsonNode? root = ConfigTree.LooksLikeJson(path, text) ? ParseJson(text, path) : ToJson(ConfigTree.ParseYaml(text, path));
        if (root is not JsonObject top) throw new InvalidInputException($"{path}: expected a mapping of config keys or a job request {{\"input\": {{...}}}}");
        return top.ContainsKey("input") ? top : new JsonObject { ["input"] = new JsonObject { ["args"] = top } };
    }

    private static JsonNode? ParseJson(string text, string path)
    {
        try { return JsonNode.Parse(text); }
        catch (System.Text.Json.JsonException e) { throw new InvalidInputException($"{path}: not valid JSON ({e.Message.Split('\n')[0]})"); }
    }

    private static JsonNode? ToJson(ConfigNode? node) => node switch
    {
        null => null,
        ScalarNode s => s.Text is null ? null : JsonValue.Create(s.Text),
        ListNode l => new JsonArray(l.Items.Select(ToJson).ToArray()),
        MapNode m => new JsonObject(m.Entries.Select(e => KeyValuePair.Create(e.Key, ToJson(e.Value)))),
        _ => throw new ArgumentException("unknown config node"),
    };

    public async Task<JsonObject> Submit(JsonObject request, CancellationToken cancel = default) =>
        await Send(HttpMethod.Post, "/run", request.ToJsonString(), cancel);

    public Task<JsonObject> Status(string id, CancellationToken cancel = default) => Send(HttpMethod.Get, $"/status/{Uri.EscapeDataString(id)}", null, cancel);
    public Task<JsonObject> Cancel(string id, CancellationToken cancel = default) => Send(HttpMethod.Post, $"/cancel/{Uri.EscapeDataString(id)}", null, cancel);
    public Task<JsonObject> Retry(string id, CancellationToken cancel = default) => Send(HttpMethod.Post, $"/retry/{Uri.EscapeDataString(id)}", null, cancel);
    public Task<JsonObject> List(CancellationToken cancel = default) => Send(HttpMethod.Get, "/jobs", null, cancel);
    public Task<JsonObject> Log(string id, int tail, CancellationToken cancel = default) => Send(HttpMethod.Get, $"/jobs/{Uri.EscapeDataString(id)}/log?tail={tail}", null, cancel);

    /// <summary>Follows /stream/{id}: calls <paramref name="onEvent"/> with each event's name and data until the job ends; returns the final status name.</summary>
    public async Task<string> Follow(string id, Action<string, JsonObject> onEvent, CancellationToken cancel = default)
    {
        using var response = await http.GetAsync($"/stream/{Uri.EscapeDataString(id)}", HttpCompletionOption.ResponseHeadersRead, cancel);
        if (!response.IsSuccessStatusCode) throw await Failure(response, cancel);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel), Encoding.UTF8);
        string name = "message";
        string status = "";
        while (await reader.ReadLineAsync(cancel) is { } line)
        {
            if (line.StartsWith("event: ", StringComparison.Ordinal)) name = line[7..];
            else if (line.StartsWith("data: ", StringComparison.Ordinal) && JsonNode.Parse(line[6..]) is JsonObject data)
            {
                onEvent(name, data);
                if (name == "end") status = data["status"]?.GetValue<string>() ?? "";
            }
        }
        return status;
    }

    private async Task<JsonObject> Send(HttpMethod method, string path, string? body, CancellationToken cancel)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await http.SendAsync(request, cancel);
        if (!response.IsSuccessStatusCode) throw await Failure(response, cancel);
        return JsonNode.Parse(await response.Content.ReadAsStringAsync(cancel)) as JsonObject ?? new JsonObject();
    }

    /// <summary>The server's refusal as one line: status, message and every problem.</summary>
    private static async Task<Exception> Failure(HttpResponseMessage response, CancellationToken cancel)
    {
        string text = await response.Content.ReadAsStringAsync(cancel);
        string message = text;
        try
        {
            if (JsonNode.Parse(text) is JsonObject o)
                message = (o["error"]?.GetValue<string>() ?? text) + (o["problems"] is JsonArray p ? ": " + string.Join("; ", p.Select(x => x?.GetValue<string>())) : "");
        }
        catch (System.Text.Json.JsonException) { /* not JSON: show as is */ }
        string line = $"{(int)response.StatusCode} {response.ReasonPhrase}: {message}";
        return (int)response.StatusCode is >= 400 and < 500 ? new InvalidInputException(line) : new HttpRequestException(line);
    }

    public void Dispose() => http.Dispose();
}
