namespace SharpTune.Tests.Hub;

/// <summary>
/// Points the hub variables (HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE, HF_HUB_CACHE, HF_HOME) at a test's hub and cache for
/// its duration and restores them after (tests run one at a time, see AssemblyInfo.cs).
/// </summary>
internal sealed class HubEnvironment : IDisposable
{
    private static readonly string[] Names = ["HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"];
    private readonly Dictionary<string, string?> saved = Names.ToDictionary(n => n, Environment.GetEnvironmentVariable);

    public string Cache { get; }
    public string Home { get; }

    public HubEnvironment(string? endpoint, string? token = null, bool offline = false, string? cache = null)
    {
        Home = TestPaths.TempDir();
        Cache = cache ?? Path.Combine(Home, "hub");
        foreach (var n in Names) Environment.SetEnvironmentVariable(n, null);
        Environment.SetEnvironmentVariable("HF_HOME", Home);
        Environment.SetEnvironmentVariable("HF_HUB_CACHE", Cache);
        // Nothing in a test may reach the public hub: with no loopback endpoint the test is offline.
        Environment.SetEnvironmentVariable("HF_ENDPOINT", endpoint ?? "http://127.0.0.1:9");
        Environment.SetEnvironmentVariable("HF_TOKEN", token);
        Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", offline || endpoint is null ? "1" : null);
    }

    public bool Offline
    {
        set => Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", value ? "1" : null);
    }

    public void Dispose()
    {
        foreach (var (name, value) in saved) Environment.SetEnvironmentVariable(name, value);
    }
}
