using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using SharpTune.Inference;
using SharpTune.Serving;

namespace SharpTune.Tests.Serving;

/// <summary>
/// Hostile requests: bodies that are not strict JSON, oversized and slow bodies, slow headers, failures inside the
/// server, a port in use. Every answer is an OpenAI-shaped error with the right status, a request id, and no exception text.
/// </summary>
public sealed class ServerHardeningTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private const string Chat = "/v1/chat/completions";

    private async Task<(HttpStatusCode Status, JsonObject Error, string RequestId)> PostBytes(string path, byte[] body)
    {
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await fixture.Client.PostAsync(path, content);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("Exception", text);
        var error = JsonNode.Parse(text)!["error"]!.AsObject();
        return (response.StatusCode, error, Assert.Single(response.Headers.GetValues("x-request-id")));
    }

    private static byte[] Bytes(params object[] parts) =>
        parts.SelectMany(p => p switch { string s => Encoding.UTF8.GetBytes(s), byte[] b => b, _ => throw new ArgumentException("string or bytes") }).ToArray();

    [Fact]
    public async Task Bodies_that_are_not_strict_json_get_400()
    {
        var utf8 = Bytes("{\"messages\": [{\"role\": \"user\", \"content\": \"caf", new byte[] { 0xC3 }, "\"}]}");
        var (status, error, id) = await PostBytes(Chat, utf8);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal($"request body: invalid UTF-8 at byte {Array.IndexOf(utf8, (byte)0xC3)}: the character starting with 0xC3 is incomplete or malformed; the text must be UTF-8",
            error["message"]!.GetValue<string>());
        Assert.Equal("invalid_request_error", error["type"]!.GetValue<string>());
        Assert.StartsWith("req_", id);

        (status, error, _) = await PostBytes(Chat, Bytes("{\"messages\": [{\"role\": \"user\", \"content\": \"a\\ud800\"}]}"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("request body: lone surrogate escape in the string at messages[0].content; a \\uD800-\\uDFFF escape must be a high-low pair", error["message"]!.GetValue<string>());

        (status, error, _) = await PostBytes(Chat, Bytes("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 2, \"max_tokens\": 9}"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("request body: duplicate key \"max_tokens\" in the top-level object; each key may appear once per object", error["message"]!.GetValue<string>());

        (status, error, _) = await PostBytes(Chat, Bytes("{\"messages\": [{\"role\": \"user\", \"content\": null}]}"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("messages[0].content: null; expected a string or a list of text parts (tool calls are not supported)", error["message"]!.GetValue<string>());
        Assert.Equal("messages", error["param"]!.GetValue<string>());

        (status, error, _) = await PostBytes(Chat, Bytes("{\"messages\": [{\"role\": \"user\"}]}"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("messages[0].content: required; expected a string or a list of text parts", error["message"]!.GetValue<string>());

        (status, error, _) = await PostBytes("/v1/completions", Bytes("{\"prompt\": \"hi\" \"max_tokens\": 2}"));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("request body: not valid JSON at byte 16 ('\"' is invalid after a value. Expected either ',', '}', or ']')", error["message"]!.GetValue<string>());
    }

    /// <summary>Sends raw bytes on one connection and reads what comes back until the server closes it (or <paramref name="wait"/> passes).</summary>
    private static async Task<string> Raw(Uri address, Func<NetworkStream, Task> send, TimeSpan wait)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port);
        var stream = tcp.GetStream();
        using var timeout = new CancellationTokenSource(wait);
        var reading = ReadAll(stream, timeout.Token);
        try { await send(stream); }
        catch (IOException) { /* the server closed the connection while we were still sending */ }
        return await reading;
    }

    private static async Task<string> ReadAll(NetworkStream stream, CancellationToken cancellation)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer, cancellation)) > 0) received.Write(buffer, 0, n);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException) { }
        return Encoding.UTF8.GetString(received.ToArray());
    }

    private static string Headers(int contentLength) =>
        $"POST {Chat} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ServerFixture.ApiKey}\r\nContent-Type: application/json\r\nContent-Length: {contentLength}\r\n\r\n";

    private static (int Status, JsonObject Body) Response(string raw)
    {
        Assert.True(raw.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) && raw.Contains("\r\nConnection: close\r\n"), raw);
        int status = int.Parse(raw.AsSpan(9, 3));
        Assert.Contains("\r\nConnection: close\r\n", raw);
        return (status, JsonNode.Parse(raw[(raw.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..])!.AsObject());
    }

    [Fact]
    public async Task A_declared_oversized_body_gets_413_before_any_of_it_is_sent()
    {
        const int declared = 50 * 1024 * 1024;
        var clock = Stopwatch.StartNew();
        // Only the headers are sent: the answer must not wait for the body.
        string raw = await Raw(fixture.Server.Address, s => s.WriteAsync(Encoding.ASCII.GetBytes(Headers(declared))).AsTask(), TimeSpan.FromSeconds(60));
        var (status, body) = Response(raw);
        Assert.Equal(413, status);
        Assert.Equal($"the request body ({declared} bytes) is larger than this server's limit of {64 * 1024} bytes", body["error"]!["message"]!.GetValue<string>());
        Assert.Equal("request_too_large", body["error"]!["code"]!.GetValue<string>());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(50), "the 413 came only when the read gave up");
    }

    [Fact]
    public async Task A_client_that_sends_the_whole_50_MB_body_first_still_reads_the_413()
    {
        using var content = new ByteArrayContent(new byte[50 * 1024 * 1024]);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await fixture.Client.PostAsync(Chat, content);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        var error = JsonNode.Parse(await response.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal($"the request body ({50 * 1024 * 1024} bytes) is larger than this server's limit of {64 * 1024} bytes", error["message"]!.GetValue<string>());
        // The server is still there for the next client.
        var (ok, _) = await PostOk("""{"prompt": "Still here?", "max_tokens": 2}""");
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    private async Task<(HttpStatusCode, string)> PostOk(string json)
    {
        using var response = await fixture.Client.PostAsync("/v1/completions", new StringContent(json, Encoding.UTF8, "application/json"));
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>A second server over the same model with short timeouts (it never generates, so sharing the model is safe).</summary>
    private async Task<OpenAiServer> ShortTimeoutServer()
    {
        var server = new OpenAiServer(fixture.Model.Generator, new ServerOptions
        {
            Port = 0, ApiKey = ServerFixture.ApiKey, MaxRequestBodyBytes = 64 * 1024,
            RequestHeadersTimeout = TimeSpan.FromSeconds(2), RequestBodyTimeout = TimeSpan.FromSeconds(2),
        });
        await server.StartAsync();
        return server;
    }

    [Fact]
    public async Task A_body_sent_at_one_byte_per_second_gets_408()
    {
        await using var server = await ShortTimeoutServer();
        string body = """{"prompt": "hi", "max_tokens": 2}""";
        var clock = Stopwatch.StartNew();
        string raw = await Raw(server.Address, async s =>
        {
            await s.WriteAsync(Encoding.ASCII.GetBytes(Headers(body.Length)));
            foreach (char c in body)
            {
                await s.WriteAsync(new[] { (byte)c });
                await Task.Delay(1000);
            }
        }, TimeSpan.FromSeconds(60));
        var (status, error) = Response(raw);
        Assert.Equal(408, status);
        Assert.Equal("the request body did not arrive within 2 s; send it at once", error["error"]!["message"]!.GetValue<string>());
        Assert.Equal("request_timeout", error["error"]!["code"]!.GetValue<string>());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(body.Length - 5), $"answered only after {clock.Elapsed}");
    }

    [Fact]
    public async Task Headers_sent_at_one_byte_per_second_get_408_and_the_connection_closed()
    {
        await using var server = await ShortTimeoutServer();
        string headers = Headers(2);
        var clock = Stopwatch.StartNew();
        string raw = await Raw(server.Address, async s =>
        {
            foreach (char c in headers)
            {
                await s.WriteAsync(new[] { (byte)c });
                await Task.Delay(1000);
            }
        }, TimeSpan.FromSeconds(60));
        Assert.StartsWith("HTTP/1.1 408 Request Timeout\r\n", raw);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"answered only after {clock.Elapsed}");
    }

    [Fact]
    public async Task A_failure_inside_the_server_answers_500_with_a_request_id_and_no_exception_text()
    {
        // A generator whose weights are gone: generating throws, as any unexpected fault inside the server would.
        var generator = TextGenerator.Load(fixture.Model.Dir);
        generator.Model.Dispose();
        var log = new StringWriter();
        await using var server = new OpenAiServer(generator, new ServerOptions { Port = 0 }, log);
        await server.StartAsync();
        using var client = new HttpClient { BaseAddress = server.Address };
        using var response = await client.PostAsync("/v1/completions", new StringContent("""{"prompt": "hi", "max_tokens": 2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        string id = Assert.Single(response.Headers.GetValues("x-request-id"));
        string text = await response.Content.ReadAsStringAsync();
        var error = JsonNode.Parse(text)!["error"]!;
        Assert.Equal($"internal server error; the server log has the details under request id {id}", error["message"]!.GetValue<string>());
        Assert.Equal("server_error", error["type"]!.GetValue<string>());
        Assert.DoesNotContain("Exception", text);
        // The details are in the server's log, under the same id.
        Assert.True(log.ToString().StartsWith($"error: request {id} (/v1/completions) failed: System.InvalidOperationException: Tensor invalid -- empty handle.", StringComparison.Ordinal), log.ToString());
    }

    [Fact]
    public void A_port_in_use_is_one_line_and_exit_1()
    {
        var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        try
        {
            int port = ((IPEndPoint)holder.LocalEndpoint).Port;
            var (code, stdout, stderr) = CliRunner.Run("serve", "--model", fixture.Model.Dir, "--port", port.ToString());
            Assert.Equal(1, code);
            Assert.Equal($"error: cannot listen on 127.0.0.1:{port}: the port is already in use by another program; stop it or pick another with --port", stderr.Trim());
            Assert.Equal("", stdout);
            var jobs = CliRunner.Run("jobs", "serve", "--port", port.ToString(), "--jobs-dir", TestPaths.TempDir());
            Assert.Equal(1, jobs.Code);
            Assert.Equal($"error: cannot listen on 127.0.0.1:{port}: the port is already in use by another program; stop it or pick another with --port", jobs.Err.Trim());
        }
        finally
        {
            holder.Stop();
        }
    }
}
