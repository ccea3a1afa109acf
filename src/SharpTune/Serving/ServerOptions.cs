namespace SharpTune.Serving;

/// <summary>Settings of the OpenAI-compatible server.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to bind; loopback unless told otherwise, so a model is never exposed by accident.</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port; 0 picks a free one (tests).</summary>
    public int Port { get; init; } = 8000;
    /// <summary>When set, every /v1 request needs `Authorization: Bearer KEY` (401 otherwise).</summary>
    public string? ApiKey { get; init; }
    /// <summary>The id /v1/models lists and responses carry.</summary>
    public string ModelId { get; init; } = "sharptune";
    /// <summary>Largest accepted request body (413 above).</summary>
    public long MaxRequestBodyBytes { get; init; } = 1 << 20;
    /// <summary>Time a client has to send its request headers (the connection is closed after).</summary>
    public TimeSpan RequestHeadersTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Time a client has to send the whole request body (408 after).</summary>
    public TimeSpan RequestBodyTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Largest max_tokens a request may ask for (400 above).</summary>
    public int MaxTokensCap { get; init; } = 2048;
    /// <summary>max_tokens of /v1/completions when the request gives none (OpenAI's default).</summary>
    public int DefaultCompletionTokens { get; init; } = 16;
    /// <summary>Requests allowed to wait for the model; more get 429 instead of piling up without bound.</summary>
    public int MaxQueuedRequests { get; init; } = 256;
    /// <summary>Most requests decoded together in one batch (the ones waiting when the model frees up).</summary>
    public int MaxBatchSize { get; init; } = 8;

    public HttpLimits Limits => new() { MaxRequestBodyBytes = MaxRequestBodyBytes, HeadersTimeout = RequestHeadersTimeout, BodyTimeout = RequestBodyTimeout };

    public ServerOptions Validated()
    {
        if (string.IsNullOrWhiteSpace(Host)) throw new InvalidInputException("--host: empty; give an address such as 127.0.0.1");
        if (Port is < 0 or > 65535) throw new InvalidInputException($"--port: {Port} is invalid; expected 0..65535");
        if (ApiKey is { Length: 0 }) throw new InvalidInputException("--api-key: empty; give a key or leave the option out");
        if (MaxRequestBodyBytes < 1024) throw new InvalidInputException($"max request body: {MaxRequestBodyBytes} bytes is too small; expected ≥ 1024");
        if (RequestHeadersTimeout <= TimeSpan.Zero || RequestBodyTimeout <= TimeSpan.Zero) throw new InvalidInputException("request timeouts: expected durations > 0");
        if (MaxTokensCap < 1) throw new InvalidInputException($"max_tokens cap: {MaxTokensCap} is invalid; expected ≥ 1");
        if (MaxQueuedRequests < 1) throw new InvalidInputException($"queue size: {MaxQueuedRequests} is invalid; expected ≥ 1");
        if (MaxBatchSize < 1) throw new InvalidInputException($"--max-batch: {MaxBatchSize} is invalid; expected ≥ 1");
        return this;
    }
}
