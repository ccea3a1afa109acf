using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using SharpTune.Inference;

namespace SharpTune.Serving;

/// <summary>
/// OpenAI-compatible HTTP API over one model: /v1/models, /v1/completions, /v1/chat/completions (JSON or SSE
/// streaming), /health. Requests wait in a <see cref="GenerationQueue{TJob}"/>; those waiting together are decoded as one
/// batch (each row with its own sampling settings, budget, stop strings and cancellation).
/// </summary>
public sealed class OpenAiServer : HttpService
{
    private readonly TextGenerator generator;
    private readonly ServerOptions options;
    private readonly GenerationQueue<PendingRequest> queue;

    /// <summary>A request on its way through the queue: where its first answer (prompt lengths or an error), its streamed pieces and its results go.</summary>
    private sealed record PendingRequest(OpenAiRequest Request, TaskCompletionSource<int[]> Started, ChannelWriter<(int Row, string Text)> Pieces,
        CancellationToken Aborted, TaskCompletionSource<IReadOnlyList<TextCompletion>> Done);
    private readonly TextWriter? log;
    private readonly long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    public OpenAiServer(TextGenerator generator, ServerOptions options, TextWriter? log = null)
        : base(options.Validated().Host, options.Port, options.Limits, TimeSpan.FromSeconds(30))
    {
        this.generator = generator;
        this.options = options.Validated();
        this.log = log is null ? null : TextWriter.Synchronized(log);
        queue = new GenerationQueue<PendingRequest>(options.MaxQueuedRequests, options.MaxBatchSize, GenerateBatch);
        App.Use(Authorize);
        App.MapGet("/health", () => Results.Json(new { status = "ok", queued = queue.Pending, batches = queue.BatchesRun, largest_batch = queue.LargestBatch }));
        App.MapGet("/v1/models", () => Results.Text(Models().ToJsonString(), "application/json"));
        App.MapPost("/v1/completions", context => Handle(context, isChat: false));
        App.MapPost("/v1/chat/completions", context => Handle(context, isChat: true));
    }

    protected override ValueTask DisposeServiceAsync()
    {
        queue.Dispose();
        return ValueTask.CompletedTask;
    }

    private JsonObject Models() => new()
    {
        ["object"] = "list",
        ["data"] = new JsonArray(new JsonObject { ["id"] = options.ModelId, ["object"] = "model", ["created"] = created, ["owned_by"] = "sharptune" }),
    };

    private async Task Authorize(HttpContext context, RequestDelegate next)
    {
        if (options.ApiKey is { } key && context.Request.Path.StartsWithSegments("/v1"))
        {
            var header = context.Request.Headers.Authorization.ToString();
            var expected = Encoding.UTF8.GetBytes("Bearer " + key);
            if (!CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(header), expected))
            {
                var message = header.Length == 0 ? "Missing API key: send the header 'Authorization: Bearer KEY'." : "Incorrect API key provided.";
                await WriteError(context, new OpenAiException(401, message, "invalid_request_error", null, "invalid_api_key"));
                return;
            }
        }
        await next(context);
    }

    private async Task Handle(HttpContext context, bool isChat)
    {
        try
        {
            var body = await HttpHost.ReadBody(context, options.Limits);
            var request = OpenAiRequest.Parse(body, isChat, options, generator.ContextLength);
            await Serve(context, request);
        }
        catch (OpenAiException e)
        {
            await WriteError(context, e);
        }
        catch (HttpBodyException e)
        {
            await WriteError(context, new OpenAiException(e.Status, e.Message, "invalid_request_error", null,
                e.Status switch { 413 => "request_too_large", 408 => "request_timeout", _ => null }));
        }
        catch (InvalidInputException e)
        {
            await WriteError(context, new OpenAiException(400, e.Message));
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
        catch (Exception e)
        {
            // The client gets the id to quote, never the exception's text (it can name files, types and internals).
            string id = HttpHost.RequestId(context);
            log?.WriteLine($"error: request {id} ({context.Request.Path}) failed: {e}");
            await WriteError(context, new OpenAiException(500, $"internal server error; the server log has the details under request id {id}", "server_error"));
        }
    }

    private async Task Serve(HttpContext context, OpenAiRequest request)
    {
        var pieces = Channel.CreateUnbounded<(int Row, string Text)>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        var started = new TaskCompletionSource<int[]>(TaskCreationOptions.RunContinuationsAsynchronously);
        var aborted = context.RequestAborted;
        var finished = new TaskCompletionSource<IReadOnlyList<TextCompletion>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var done = finished.Task;
        if (!queue.TryEnqueue(new PendingRequest(request, started, pieces.Writer, aborted, finished)))
            throw new OpenAiException(429, $"the server is busy ({options.MaxQueuedRequests} requests waiting); retry later", "rate_limit_error", null, "queue_full");
        try
        {
            await started.Task;
        }
        catch
        {
            await done.ContinueWith(_ => { }, TaskScheduler.Default);   // observe the job's own copy of the error
            throw;
        }
        string id = (request.IsChat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (!request.Stream)
        {
            var completions = await done;
            await WriteJson(context, 200, Response(request, id, now, completions));
            return;
        }
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["X-Accel-Buffering"] = "no";
        if (request.IsChat)
            await WriteEvent(context, Chunk(request, id, now, 0, new JsonObject { ["role"] = "assistant", ["content"] = "" }, null));
        await foreach (var (row, text) in pieces.Reader.ReadAllAsync(aborted))
            await WriteEvent(context, Chunk(request, id, now, row, request.IsChat ? new JsonObject { ["content"] = text } : text, null));
        var results = await done;
        for (int row = 0; row < results.Count; row++)
            await WriteEvent(context, Chunk(request, id, now, row, request.IsChat ? new JsonObject() : "", FinishName(results[row].Finish)));
        if (request.IncludeUsage)
        {
            var usage = Envelope(request, id, now, new JsonArray());
            usage["usage"] = Usage(results);
            await WriteEvent(context, usage);
        }
        await context.Response.WriteAsync("data: [DONE]\n\n", aborted);
        await context.Response.Body.FlushAsync(aborted);
    }

    /// <summary>
    /// Runs on the queue's thread: encodes and checks each request's prompts (a bad one fails alone, through its
    /// Started), then decodes the rows of all the others in one batch and hands each request its rows.
    /// </summary>
    private void GenerateBatch(IReadOnlyList<PendingRequest> batch)
    {
        var accepted = new List<(PendingRequest Job, IReadOnlyList<IReadOnlyList<long>> Prompts)>();
        foreach (var job in batch)
        {
            try
            {
                job.Aborted.ThrowIfCancellationRequested();
                IReadOnlyList<IReadOnlyList<long>> prompts = job.Request.IsChat
                    ? [generator.EncodeChat(job.Request.Messages)]
                    : job.Request.Prompts.Select(generator.EncodePrompt).ToArray();
                CheckLengths(job.Request, prompts);
                accepted.Add((job, prompts));
                job.Started.SetResult(prompts.Select(p => p.Count).ToArray());
            }
            catch (Exception e)
            {
                job.Started.TrySetException(e);
                job.Done.TrySetException(e);
                job.Pieces.TryComplete();
            }
        }
        if (accepted.Count == 0) return;
        // Row r of the batch belongs to request owner[r], as its row local[r].
        var owner = accepted.SelectMany((a, i) => a.Prompts.Select(_ => i)).ToArray();
        var local = accepted.SelectMany(a => a.Prompts.Select((_, k) => k)).ToArray();
        try
        {
            var results = generator.GenerateBatch(
                accepted.SelectMany(a => a.Prompts).ToArray(),
                owner.Select(i => accepted[i].Job.Request.Options).ToArray(),
                (row, text) => { if (accepted[owner[row]].Job.Request.Stream) accepted[owner[row]].Job.Pieces.TryWrite((local[row], text)); },
                owner.Select(i => accepted[i].Job.Aborted).ToArray());
            for (int i = 0; i < accepted.Count; i++)
                accepted[i].Job.Done.TrySetResult(Enumerable.Range(0, results.Count).Where(r => owner[r] == i).Select(r => results[r]).ToArray());
        }
        catch (Exception e)
        {
            foreach (var (job, _) in accepted) job.Done.TrySetException(e);
        }
        finally
        {
            foreach (var (job, _) in accepted) job.Pieces.TryComplete();
        }
    }

    private void CheckLengths(OpenAiRequest request, IReadOnlyList<IReadOnlyList<long>> prompts)
    {
        string param = request.IsChat ? "messages" : "prompt";
        int context = generator.ContextLength;
        foreach (var prompt in prompts)
        {
            if (prompt.Count >= context)
                throw new OpenAiException(400, $"This model's maximum context length is {context} tokens. However, your {param} has {prompt.Count} tokens. Please reduce the length of the {param}.",
                    "invalid_request_error", param, "context_length_exceeded");
            if (request.MaxTokensGiven && prompt.Count + request.Options.Sampling.MaxNewTokens > context)
                throw new OpenAiException(400, $"This model's maximum context length is {context} tokens. However, you requested {prompt.Count + request.Options.Sampling.MaxNewTokens} tokens ({prompt.Count} in the {param}, {request.Options.Sampling.MaxNewTokens} for the completion). Please reduce the length of the {param} or the max_tokens.",
                    "invalid_request_error", param, "context_length_exceeded");
            BatchGenerator.CheckPrompt(generator.Model.Config, prompt, param);
        }
    }

    private JsonObject Response(OpenAiRequest request, string id, long now, IReadOnlyList<TextCompletion> completions)
    {
        var choices = new JsonArray();
        for (int i = 0; i < completions.Count; i++)
        {
            var choice = new JsonObject { ["index"] = i };
            if (request.IsChat) choice["message"] = new JsonObject { ["role"] = "assistant", ["content"] = completions[i].Text };
            else choice["text"] = completions[i].Text;
            choice["logprobs"] = null;
            choice["finish_reason"] = FinishName(completions[i].Finish);
            choices.Add(choice);
        }
        var response = Envelope(request, id, now, choices, chunk: false);
        response["usage"] = Usage(completions);
        return response;
    }

    private JsonObject Chunk(OpenAiRequest request, string id, long now, int row, JsonNode delta, string? finish)
    {
        var choice = new JsonObject { ["index"] = row };
        choice[request.IsChat ? "delta" : "text"] = delta;
        choice["logprobs"] = null;
        choice["finish_reason"] = finish;
        return Envelope(request, id, now, new JsonArray(choice));
    }

    private JsonObject Envelope(OpenAiRequest request, string id, long now, JsonArray choices, bool chunk = true) => new()
    {
        ["id"] = id,
        ["object"] = request.IsChat ? chunk ? "chat.completion.chunk" : "chat.completion" : "text_completion",
        ["created"] = now,
        ["model"] = options.ModelId,
        ["system_fingerprint"] = null,
        ["choices"] = choices,
    };

    private static JsonObject Usage(IReadOnlyList<TextCompletion> completions)
    {
        int prompt = completions.Sum(c => c.PromptTokens), completion = completions.Sum(c => c.CompletionTokens);
        return new JsonObject { ["prompt_tokens"] = prompt, ["completion_tokens"] = completion, ["total_tokens"] = prompt + completion };
    }

    private static string FinishName(FinishReason finish) => finish == FinishReason.Length ? "length" : "stop";

    private static async Task WriteEvent(HttpContext context, JsonObject payload)
    {
        await context.Response.WriteAsync("data: " + payload.ToJsonString() + "\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    private static Task WriteJson(HttpContext context, int status, JsonObject payload)
    {
        var bytes = Encoding.UTF8.GetBytes(payload.ToJsonString());
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength = bytes.Length;
        return context.Response.Body.WriteAsync(bytes, context.RequestAborted).AsTask();
    }

    private static async Task WriteError(HttpContext context, OpenAiException error)
    {
        if (context.Response.HasStarted)
        {
            // Mid-stream: the status is already sent, so the error travels as an event.
            await context.Response.WriteAsync("data: " + error.ToJson().ToJsonString() + "\n\n");
            return;
        }
        if (error.Status == 401) context.Response.Headers.WWWAuthenticate = "Bearer";
        await WriteJson(context, error.Status, error.ToJson());
    }
}
