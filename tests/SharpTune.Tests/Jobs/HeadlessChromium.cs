using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpTune.Tests.Jobs;

/// <summary>
/// Debian's chromium, headless, driven over the DevTools protocol on a WebSocket (no browser-automation package): start it
/// on a page, evaluate JavaScript in that page, take a screenshot.
/// </summary>
internal sealed class HeadlessChromium : IAsyncDisposable
{
    public const string Executable = "/usr/bin/chromium";
    private readonly Process process;
    private readonly string profile;
    private readonly ClientWebSocket socket = new();
    private int nextId;

    private HeadlessChromium(Process process, string profile) => (this.process, this.profile) = (process, profile);

    public static async Task<HeadlessChromium> Open(string url)
    {
        string profile = TestPaths.TempDir();
        var info = new ProcessStartInfo(Executable) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var flag in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--remote-debugging-port=0",
                     $"--user-data-dir={profile}", "--window-size=1280,1000", url,
                 })
            info.ArgumentList.Add(flag);
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var browser = new HeadlessChromium(process, profile);
        // Chromium writes the port it picked (and the browser target's path) to DevToolsActivePort.
        string portFile = Path.Combine(profile, "DevToolsActivePort");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!(File.Exists(portFile) && File.ReadAllLines(portFile).Length >= 2))
        {
            if (process.HasExited || DateTime.UtcNow > deadline) throw new InvalidOperationException("chromium did not open its DevTools port");
            await Task.Delay(100);
        }
        int port = int.Parse(File.ReadAllLines(portFile)[0]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
        string? pageSocket = null;
        while (pageSocket is null && DateTime.UtcNow < deadline)
        {
            var targets = JsonNode.Parse(await http.GetStringAsync("/json/list"))!.AsArray();
            pageSocket = targets.FirstOrDefault(t => t!["type"]!.GetValue<string>() == "page")?["webSocketDebuggerUrl"]?.GetValue<string>();
            if (pageSocket is null) await Task.Delay(100);
        }
        await browser.socket.ConnectAsync(new Uri(pageSocket ?? throw new InvalidOperationException("chromium has no page target")), CancellationToken.None);
        return browser;
    }

    /// <summary>Sends one DevTools command and returns its result (events arriving meanwhile are skipped).</summary>
    public async Task<JsonObject> Send(string method, JsonObject? parameters = null)
    {
        int id = ++nextId;
        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        await socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[1 << 16];
        while (true)
        {
            using var text = new MemoryStream();
            WebSocketReceiveResult part;
            do
            {
                part = await socket.ReceiveAsync(buffer, CancellationToken.None);
                text.Write(buffer, 0, part.Count);
            } while (!part.EndOfMessage);
            var reply = JsonNode.Parse(text.ToArray())!.AsObject();
            if (reply["id"]?.GetValue<int>() != id) continue;
            if (reply["error"] is { } error) throw new InvalidOperationException($"{method}: {error.ToJsonString()}");
            return reply["result"]!.AsObject();
        }
    }

    /// <summary>Evaluates an expression in the page; returns its value as JSON (null for undefined).</summary>
    public async Task<JsonNode?> Evaluate(string expression)
    {
        var result = await Send("Runtime.evaluate", new JsonObject { ["expression"] = expression, ["returnByValue"] = true });
        if (result["exceptionDetails"] is { } failure) throw new InvalidOperationException($"{expression}: {failure.ToJsonString()}");
        return result["result"]!["value"]?.DeepClone();
    }

    /// <summary>
    /// Polls <paramref name="expression"/> until it is true. A throw counts as "not yet": right after navigation the
    /// old document (or none, document.body null) may still be current.
    /// </summary>
    public async Task WaitUntil(string expression, int timeoutSeconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        string guarded = $"(() => {{ try {{ return ({expression}) === true; }} catch (e) {{ return false; }} }})()";
        while (!(await Evaluate(guarded) is JsonValue v && v.TryGetValue(out bool ok) && ok))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"page never satisfied {expression}; body: {await Evaluate("document.body ? document.body.innerText : '(no body yet)'")}");
            await Task.Delay(100);
        }
    }

    public async Task<byte[]> Screenshot() =>
        Convert.FromBase64String((await Send("Page.captureScreenshot", new JsonObject { ["format"] = "png" }))["data"]!.GetValue<string>());

    public async Task Navigate(string url) => await Send("Page.navigate", new JsonObject { ["url"] = url });

    public async ValueTask DisposeAsync()
    {
        try { if (socket.State == WebSocketState.Open) await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "", CancellationToken.None); }
        catch (WebSocketException) { /* the browser is going away anyway */ }
        socket.Dispose();
        if (!process.HasExited) process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync();
        process.Dispose();
        try { Directory.Delete(profile, recursive: true); }
        catch (IOException) { /* a file chromium still held; the temp folder is cleaned later */ }
    }
}
