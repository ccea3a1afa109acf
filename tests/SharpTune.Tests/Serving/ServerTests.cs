using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using SharpTune.Inference;
using SharpTune.Serving;
using SharpTune.Tests.Inference;

namespace SharpTune.Tests.Serving;

/// <summary>A real Kestrel server on a free loopback port over the Llama 3 tokenizer model, with an API key.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string ApiKey = "test-key-123";
    public TextModelFixture Model { get; } = new();
    public OpenAiServer Server { get; private set; } = null!;
    public HttpClient Client { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = new OpenAiServer(Model.Generator, new ServerOptions { Port = 0, ApiKey = ApiKey, ModelId = "tiny-llama3", MaxTokensCap = 64, MaxRequestBodyBytes = 64 * 1024 });
        await Server.StartAsync();
        Client = new HttpClient { BaseAddress = Server.Address, Timeout = TimeSpan.FromMinutes(5) };
        Client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", ApiKey);
    }

    public async Task DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
        Model.Dispose();
    }
}

public sealed class ServerTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Client => fixture.Client;

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private async Task<(HttpStatusCode Status, JsonObject Body)> Post(string path, string body)
    {
        using var response = await Client.PostAsync(path, Json(body));
        var text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, JsonNode.Parse(text)!.AsObject());
    }

    /// <summary>What the library produces for the same chat, greedy, without HTTP.</summary>
    private TextCompletion Direct(IReadOnlyList<ChatMessage> messages, int maxTokens, params string[] stop)
    {
        lock (fixture.Model.Gate)
        {
            var generator = fixture.Model.Generator;
            return generator.Generate(generator.EncodeChat(messages), new TextGenerationOptions { Sampling = new GenerationOptions { MaxNewTokens = maxTokens }, StopStrings = stop });
        }
    }

    [Fact]
    public async Task ModelsAndHealth()
    {
        var models = JsonNode.Parse(await Client.GetStringAsync("/v1/models"))!;
        Assert.Equal("list", models["object"]!.GetValue<string>());
        Assert.Equal("tiny-llama3", models["data"]![0]!["id"]!.GetValue<string>());
        using var anonymous = new HttpClient { BaseAddress = fixture.Server.Address };
        var health = JsonNode.Parse(await anonymous.GetStringAsync("/health"))!;
        Assert.Equal("ok", health["status"]!.GetValue<string>());
        Assert.Equal(IPAddress.Loopback.ToString(), fixture.Server.Address.Host);
    }

    [Fact]
    public async Task ChatCompletionMatchesTheLibraryAndCountsTokens()
    {
        var (status, body) = await Post("/v1/chat/completions", """{"model": "tiny-llama3", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 12}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var expected = Direct([new ChatMessage("user", "Say hello")], 12);
        Assert.Equal("chat.completion", body["object"]!.GetValue<string>());
        Assert.Equal("assistant", body["choices"]![0]!["message"]!["role"]!.GetValue<string>());
        Assert.Equal(expected.Text, body["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal(expected.Finish == FinishReason.Length ? "length" : "stop", body["choices"]![0]!["finish_reason"]!.GetValue<string>());
        Assert.Equal(expected.PromptTokens, body["usage"]!["prompt_tokens"]!.GetValue<int>());
        Assert.Equal(expected.CompletionTokens, body["usage"]!["completion_tokens"]!.GetValue<int>());
        Assert.Equal(expected.PromptTokens + expected.CompletionTokens, body["usage"]!["total_tokens"]!.GetValue<int>());
        // Llama 3's template: <|begin_of_text|><|start_header_id|>user<|end_header_id|>"\n\n"Say hello<|eot_id|> + the assistant header (4 tokens).
        Assert.Equal(12, expected.PromptTokens);
    }

    [Fact]
    public async Task StreamingChatConcatenatesToTheSameText()
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = Json("""{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Count"}], "max_tokens": 16, "stream": true, "stream_options": {"include_usage": true}}"""),
        };
        using var response = await Client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n');
        var events = lines.Where(l => l.StartsWith("data: ", StringComparison.Ordinal)).Select(l => l[6..]).ToList();
        Assert.Equal("[DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e)!).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c["object"]!.GetValue<string>()));
        Assert.Equal("assistant", chunks[0]["choices"]![0]!["delta"]!["role"]!.GetValue<string>());
        var text = string.Concat(chunks.Where(c => c["choices"]!.AsArray().Count > 0).Select(c => c["choices"]![0]!["delta"]!["content"]?.GetValue<string>() ?? ""));
        var expected = Direct([new ChatMessage("system", "Be brief."), new ChatMessage("user", "Count")], 16);
        Assert.Equal(expected.Text, text);
        var finish = chunks.Where(c => c["choices"]!.AsArray().Count > 0).Select(c => c["choices"]![0]!["finish_reason"]).Last(f => f is not null)!.GetValue<string>();
        Assert.Equal(expected.Finish == FinishReason.Length ? "length" : "stop", finish);
        Assert.Equal(expected.CompletionTokens, chunks[^1]["usage"]!["completion_tokens"]!.GetValue<int>());
        // Every event is a single line followed by a blank line.
        Assert.Equal(events.Count * 2, lines.Count(l => l.Length == 0) + events.Count - 1);
    }

    [Fact]
    public async Task CompletionsWithStopStringAndSeed()
    {
        var (status, full) = await Post("/v1/completions", """{"prompt": "The capital of France is", "max_tokens": 20}""");
        Assert.Equal(HttpStatusCode.OK, status);
        var text = full["choices"]![0]!["text"]!.GetValue<string>();
        Assert.Equal("text_completion", full["object"]!.GetValue<string>());
        Assert.True(text.Length >= 6, $"too short to pick a stop string: '{text}'");
        var stop = text.Substring(3, 3);
        var cut = text[..text.IndexOf(stop, StringComparison.Ordinal)];
        var (_, stopped) = await Post("/v1/completions", new JsonObject { ["prompt"] = "The capital of France is", ["max_tokens"] = 20, ["stop"] = new JsonArray(stop) }.ToJsonString());
        Assert.Equal(cut, stopped["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Equal("stop", stopped["choices"]![0]!["finish_reason"]!.GetValue<string>());
        // Seeded sampling is reproducible.
        var sampled = """{"prompt": "Once upon a time", "max_tokens": 10, "temperature": 1.0, "top_p": 0.95, "seed": 7}""";
        var (_, a) = await Post("/v1/completions", sampled);
        var (_, b) = await Post("/v1/completions", sampled);
        Assert.Equal(a["choices"]![0]!["text"]!.GetValue<string>(), b["choices"]![0]!["text"]!.GetValue<string>());
        Assert.Equal(10, a["usage"]!["completion_tokens"]!.GetValue<int>());
        // Default max_tokens of /v1/completions is OpenAI's 16.
        var (_, defaulted) = await Post("/v1/completions", """{"prompt": "The capital of France is"}""");
        Assert.Equal(text[..defaulted["choices"]![0]!["text"]!.GetValue<string>().Length], defaulted["choices"]![0]!["text"]!.GetValue<string>());
        if (full["choices"]![0]!["finish_reason"]!.GetValue<string>() == "length")
            Assert.Equal(16, defaulted["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task ErrorsAreOpenAiShaped()
    {
        using var anonymous = new HttpClient { BaseAddress = fixture.Server.Address };
        using var unauthorized = await anonymous.PostAsync("/v1/chat/completions", Json("""{"messages": [{"role": "user", "content": "hi"}]}"""));
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
        var error = JsonNode.Parse(await unauthorized.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("invalid_api_key", error["code"]!.GetValue<string>());
        anonymous.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "wrong");
        using var wrong = await anonymous.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, wrong.StatusCode);

        var (badJson, badBody) = await Post("/v1/chat/completions", "{not json");
        Assert.Equal(HttpStatusCode.BadRequest, badJson);
        Assert.StartsWith("request body: not valid JSON at byte 1 (", badBody["error"]!["message"]!.GetValue<string>());
        Assert.Equal("invalid_request_error", badBody["error"]!["type"]!.GetValue<string>());

        var (n2, n2Body) = await Post("/v1/chat/completions", """{"messages": [{"role": "user", "content": "hi"}], "n": 2}""");
        Assert.Equal(HttpStatusCode.BadRequest, n2);
        Assert.Equal("n", n2Body["error"]!["param"]!.GetValue<string>());

        var (cap, capBody) = await Post("/v1/completions", """{"prompt": "hi", "max_tokens": 65}""");
        Assert.Equal(HttpStatusCode.BadRequest, cap);
        Assert.Equal("max_tokens: 65 is above this server's limit of 64", capBody["error"]!["message"]!.GetValue<string>());

        var (temp, tempBody) = await Post("/v1/completions", """{"prompt": "hi", "temperature": -0.5}""");
        Assert.Equal(HttpStatusCode.BadRequest, temp);
        Assert.Equal("temperature", tempBody["error"]!["param"]!.GetValue<string>());

        var (roleStatus, roleBody) = await Post("/v1/chat/completions", """{"messages": [{"role": "robot", "content": "hi"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, roleStatus);
        Assert.StartsWith("messages[0].role: 'robot' is invalid", roleBody["error"]!["message"]!.GetValue<string>());

        using var huge = await Client.PostAsync("/v1/completions", Json("{\"prompt\": \"" + new string('a', 70 * 1024) + "\"}"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);
    }

    [Fact]
    public async Task TooLongPromptGets400AndTheServerKeepsServing()
    {
        var longText = string.Join(" ", Enumerable.Repeat("word", 300));
        var (status, body) = await Post("/v1/chat/completions", new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = longText }) }.ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("context_length_exceeded", body["error"]!["code"]!.GetValue<string>());
        Assert.Equal("messages", body["error"]!["param"]!.GetValue<string>());
        Assert.StartsWith("This model's maximum context length is 256 tokens. However, your messages has 31", body["error"]!["message"]!.GetValue<string>());
        var (streamStatus, _) = await Post("/v1/completions", new JsonObject { ["prompt"] = longText, ["stream"] = true }.ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, streamStatus);
        // Prompt + max_tokens over the context is also refused when max_tokens was asked for explicitly.
        var (sumStatus, sumBody) = await Post("/v1/completions", new JsonObject { ["prompt"] = string.Join(" ", Enumerable.Repeat("word", 220)), ["max_tokens"] = 64 }.ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, sumStatus);
        int promptTokens = fixture.Model.Generator.EncodePrompt(string.Join(" ", Enumerable.Repeat("word", 220))).Count;
        Assert.Equal(220, promptTokens);   // one token per word; this tokenizer.json has no BOS post-processor
        Assert.Contains($"you requested {promptTokens + 64} tokens ({promptTokens} in the prompt, 64 for the completion)", sumBody["error"]!["message"]!.GetValue<string>());
        var (after, afterBody) = await Post("/v1/completions", """{"prompt": "Still alive?", "max_tokens": 3}""");
        Assert.Equal(HttpStatusCode.OK, after);
        Assert.Equal(3, afterBody["usage"]!["completion_tokens"]!.GetValue<int>() + (afterBody["choices"]![0]!["finish_reason"]!.GetValue<string>() == "stop" ? 3 - afterBody["usage"]!["completion_tokens"]!.GetValue<int>() : 0));
    }

    [Fact]
    public async Task TwentyConcurrentRequestsAllSucceed()
    {
        var prompts = Enumerable.Range(0, 20).Select(i => $"Request number {i % 4}").ToArray();
        var tasks = prompts.Select((p, i) => i % 2 == 0
            ? Post("/v1/chat/completions", new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = p }), ["max_tokens"] = 6 }.ToJsonString())
            : Post("/v1/completions", new JsonObject { ["prompt"] = p, ["max_tokens"] = 6 }.ToJsonString())).ToArray();
        var results = await Task.WhenAll(tasks);
        Assert.All(results, r => Assert.Equal(HttpStatusCode.OK, r.Status));
        // Identical greedy requests get identical answers however they were interleaved.
        string Text(JsonObject body, bool chat) => chat ? body["choices"]![0]!["message"]!["content"]!.GetValue<string>() : body["choices"]![0]!["text"]!.GetValue<string>();
        for (int i = 4; i < 20; i++) Assert.Equal(Text(results[i - 4].Body, i % 2 == 0), Text(results[i].Body, i % 2 == 0));
        var expected = Direct([new ChatMessage("user", "Request number 0")], 6);
        Assert.Equal(expected.Text, Text(results[0].Body, true));
        // Requests that waited together were decoded together.
        var health = JsonNode.Parse(await Client.GetStringAsync("/health"))!;
        Assert.True(health["largest_batch"]!.GetValue<int>() >= 2, health.ToJsonString());
        Assert.True(health["batches"]!.GetValue<int>() < 20 + 10, health.ToJsonString());
    }
}
