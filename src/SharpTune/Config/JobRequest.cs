using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace SharpTune.Config;

/// <summary>
/// A RunPod-worker job request, <c>{"input": {"user_id", "model_id", "run_id", "credentials": {"hf_token", "wandb_api_key"},
/// "args": {…config keys…}}, "policy": {"executionTimeout": ms}}</c>, checked field by field. The token is kept apart from
/// everything that is stored or printed.
/// </summary>
public sealed record JobRequest(string? UserId, string? RunId, string? ModelId, string? HfToken, JsonObject Args, long? ExecutionTimeoutMs,
    IReadOnlyList<string> Problems)
{
    /// <summary>What user_id and run_id may look like: they become folder names under --jobs-dir, so no separators and no dot names.</summary>
    private static readonly Regex SafeName = new("^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$");

    public static bool IsSafeName(string name) => SafeName.IsMatch(name) && !name.EndsWith('.');

    public const string NameRule = "1-100 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit and not ending with '.'";

    /// <summary>
    /// Parses a request body. Without usable args it throws <see cref="JobRequestException"/> (400) listing every problem;
    /// otherwise the problems of the other fields travel in <see cref="Problems"/>, so that the args can be checked too and
    /// one answer lists everything.
    /// </summary>
    public static JobRequest Parse(string body)
    {
        JsonNode? root;
        try
        {
            root = StrictJson.Parse(Encoding.UTF8.GetBytes(body));
        }
        catch (StrictJsonException e)
        {
            throw new JobRequestException(400, [$"body: {e.Message}; expected {{\"input\": {{\"args\": {{...config keys...}}}}}}"]);
        }
        var problems = new List<string>();
        if (root is not JsonObject top)
            throw new JobRequestException(400, [$"body: {Kind(root)}; expected a JSON object {{\"input\": {{...}}}}"]);
        foreach (var (key, _) in top)
            if (key == "webhook") problems.Add("webhook: not supported by this worker; poll GET /status/{id} or follow GET /stream/{id}");
            else if (key is not ("input" or "policy")) problems.Add($"{key}: unknown field; expected input and optionally policy");

        long? timeout = null;
        if (top["policy"] is { } policyNode)
        {
            if (policyNode is not JsonObject policy) problems.Add($"policy: {Kind(policyNode)}; expected an object such as {{\"executionTimeout\": 600000}}");
            else
                foreach (var (key, value) in policy)
                {
                    if (key != "executionTimeout") { problems.Add($"policy.{key}: not supported; the only policy field is executionTimeout (milliseconds)"); continue; }
                    if (value is JsonValue v && v.TryGetValue(out long ms) && ms >= 1) timeout = ms;
                    else problems.Add($"policy.executionTimeout: {Show(value)}; expected a whole number of milliseconds ≥ 1");
                }
        }

        if (top["input"] is not JsonObject input)
        {
            problems.Add(top.ContainsKey("input") ? $"input: {Kind(top["input"])}; expected an object with args" : "input: missing; expected {\"input\": {\"args\": {...config keys...}}}");
            throw new JobRequestException(400, problems);
        }
        string? userId = null, runId = null, modelId = null, hfToken = null;
        JsonObject? args = null;
        foreach (var (key, value) in input)
        {
            switch (key)
            {
                case "user_id": userId = Name(value, "input.user_id", problems); break;
                case "run_id": runId = Name(value, "input.run_id", problems); break;
                case "model_id": modelId = Text(value, "input.model_id", problems); break;
                case "args":
                    if (value is JsonObject a) args = a;
                    else problems.Add($"input.args: {Kind(value)}; expected an object of config keys (docs/config.md)");
                    break;
                case "credentials":
                    hfToken = Credentials(value, problems);
                    break;
                default:
                    problems.Add($"input.{key}: unknown field; expected user_id, model_id, run_id, credentials, args");
                    break;
            }
        }
        if (!input.ContainsKey("args")) problems.Add("input.args: missing; expected an object of config keys (docs/config.md)");
        if (args is null) throw new JobRequestException(400, problems);
        return new JobRequest(userId, runId, modelId, hfToken, args, timeout, problems);
    }

    /// <summary>The body of POST /retry/{id}: empty, or {"credentials": {"hf_token": "…"}} to hand the token again.</summary>
    public static string? RetryToken(string body)
    {
        if (body.Trim().Length == 0) return null;
        const string expected = "expected an empty body or {\"credentials\": {\"hf_token\": \"…\"}}";
        JsonNode? root;
        try { root = StrictJson.Parse(Encoding.UTF8.GetBytes(body)); }
        catch (StrictJsonException e) { throw new JobRequestException(400, [$"body: {e.Message}; {expected}"]); }
        if (root is not JsonObject top || top.Any(kv => kv.Key != "credentials"))
            throw new JobRequestException(400, [$"body: {Kind(root)} with other fields; {expected}"]);
        var problems = new List<string>();
        string? token = Credentials(top["credentials"], problems);
        if (problems.Count > 0) throw new JobRequestException(400, problems);
        return token;
    }

    private static string? Credentials(JsonNode? value, List<string> problems)
    {
        if (value is null) return null;
        if (value is not JsonObject credentials)
        {
            problems.Add($"input.credentials: {Kind(value)}; expected an object with hf_token");
            return null;
        }
        string? token = null;
        foreach (var (key, v) in credentials)
        {
            // The values are secrets: messages name the field, never the value.
            if (v is not null && (v is not JsonValue jv || !jv.TryGetValue(out string? _)))
            {
                problems.Add($"input.credentials.{key}: {Kind(v)}; expected a string");
                continue;
            }
            string? text = v?.GetValue<string>();
            switch (key)
            {
                case "hf_token": token = string.IsNullOrEmpty(text) ? null : text; break;
                case "wandb_api_key":
                    if (!string.IsNullOrEmpty(text))
                        problems.Add("input.credentials.wandb_api_key: Weights & Biases is not supported by SharpTune; leave it empty — metrics are in metrics.jsonl, TensorBoard files and GET /stream/{id}");
                    break;
                default: problems.Add($"input.credentials.{key}: unknown credential; expected hf_token (wandb_api_key must be empty)"); break;
            }
        }
        return token;
    }

    /// <summary>An id that becomes a folder name: checked strictly; "" or null means "not given".</summary>
    private static string? Name(JsonNode? value, string field, List<string> problems)
    {
        string? text = Text(value, field, problems);
        if (string.IsNullOrEmpty(text)) return null;
        if (!IsSafeName(text))
        {
            problems.Add($"{field}: {JsonSerializer.Serialize(text.Length > 40 ? text[..40] + "…" : text)} is not allowed; expected {NameRule}");
            return null;
        }
        return text;
    }

    private static string? Text(JsonNode? value, string field, List<string> problems)
    {
        if (value is null) return null;
        if (value is JsonValue v && v.TryGetValue(out string? s)) return s;
        problems.Add($"{field}: {Kind(value)}; expected a string");
        return null;
    }

    internal static string Kind(JsonNode? node) => node switch
    {
        null => "null",
        JsonObject => "an object",
        JsonArray => "an array",
        JsonValue v => v.GetValueKind() switch
        {
            JsonValueKind.String => "a string",
            JsonValueKind.Number => $"the number {v.ToJsonString()}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {v.ToJsonString()}",
            _ => "a value",
        },
        _ => "a value",
    };

    private static string Show(JsonNode? node) => node is JsonValue v ? v.ToJsonString() : Kind(node);
}

/// <summary>A request the service refuses: the HTTP status and every problem, each one line naming the field.</summary>
public sealed class JobRequestException(int status, IReadOnlyList<string> problems) : Exception(string.Join("; ", problems))
{
    public int Status { get; } = status;
    public IReadOnlyList<string> Problems { get; } = problems;
}
