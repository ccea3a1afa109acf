namespace SharpTune.Hub;

/// <summary>
/// How SharpTune talks to a Hugging Face Hub, read from the same environment variables huggingface_hub 0.24 reads
/// (constants.py): HF_ENDPOINT, HF_TOKEN / HF_HOME/token, HF_HUB_OFFLINE, HF_HUB_CACHE / HF_HOME, HF_HUB_DOWNLOAD_TIMEOUT.
/// </summary>
public sealed record HubSettings
{
    /// <summary>Base URL of the hub, without a trailing slash. Default https://huggingface.co.</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;
    /// <summary>Access token sent as "Authorization: Bearer"; null = anonymous.</summary>
    public string? Token { get; init; }
    /// <summary>Only the cache is used; nothing is fetched (HF_HUB_OFFLINE=1).</summary>
    public bool Offline { get; init; }
    /// <summary>The hub cache folder holding models--org--name/ and datasets--org--name/.</summary>
    public required string Cache { get; init; }
    /// <summary>Seconds to wait for a response (HF_HUB_DOWNLOAD_TIMEOUT, default 10 as in huggingface_hub).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>First back-off after a 5xx/429 or a dropped connection; doubles per attempt.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Attempts per request before giving up.</summary>
    public int MaxAttempts { get; init; } = 5;
    /// <summary>Files downloaded at once (huggingface_hub's max_workers default).</summary>
    public int Workers { get; init; } = 8;

    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>
    /// The settings the environment gives. <paramref name="token"/> (a job request's credentials.hf_token) wins over
    /// HF_TOKEN, which wins over the token file ($HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token).
    /// </summary>
    public static HubSettings FromEnvironment(string? token = null)
    {
        string home = HfHome();
        return new HubSettings
        {
            Endpoint = (Env("HF_ENDPOINT") ?? DefaultEndpoint).TrimEnd('/'),
            Token = NonEmpty(token) ?? Env("HF_TOKEN") ?? Env("HUGGING_FACE_HUB_TOKEN") ?? ReadTokenFile(Env("HF_TOKEN_PATH") ?? Path.Combine(home, "token")),
            Offline = IsTrue(Env("HF_HUB_OFFLINE")) || IsTrue(Env("TRANSFORMERS_OFFLINE")),
            Cache = Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub"),
            Timeout = double.TryParse(Env("HF_HUB_DOWNLOAD_TIMEOUT"), System.Globalization.CultureInfo.InvariantCulture, out var s) && s > 0
                ? TimeSpan.FromSeconds(s) : TimeSpan.FromSeconds(10),
        };
    }

    /// <summary>$HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.</summary>
    public static string HfHome() =>
        Env("HF_HOME") ?? Path.Combine(Env("XDG_CACHE_HOME") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "huggingface");

    /// <summary>Where the token comes from, for messages (never the token itself).</summary>
    public static string TokenHint => $"set HF_TOKEN=hf_... or write the token to {Path.Combine(HfHome(), "token")}";

    /// <summary>huggingface_hub's _is_true: 1, ON, YES, TRUE in any case.</summary>
    private static bool IsTrue(string? value) => value?.ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string? Env(string name) => NonEmpty(Environment.GetEnvironmentVariable(name));

    private static string? NonEmpty(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string? ReadTokenFile(string path)
    {
        try { return File.Exists(path) ? NonEmpty(File.ReadAllText(path)) : null; }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
