using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace SharpTune.Serving;

/// <summary>How much and how slowly a client may send: the body cap and the time allowed for the headers and for the body.</summary>
public sealed record HttpLimits
{
    /// <summary>Largest request body in bytes (413 above; a declared Content-Length is refused before any of the body is read).</summary>
    public long MaxRequestBodyBytes { get; init; } = 1 << 20;
    /// <summary>Time from connecting (or the previous request) to the end of the request headers.</summary>
    public TimeSpan HeadersTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>Time for the whole request body to arrive (408 after).</summary>
    public TimeSpan BodyTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>A request body refused: its HTTP status and why, in words (each server words its own error body).</summary>
public sealed class HttpBodyException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

/// <summary>The address a server was asked to listen on is taken or not allowed: a fault of the machine, not of the input (exit 1).</summary>
public sealed class ListenException(string message, Exception inner) : Exception(message, inner);

/// <summary>Kestrel set-up and body reading shared by SharpTune's HTTP services (the OpenAI server, the job service).</summary>
public static class HttpHost
{
    private const string RequestIdKey = "sharptune.request_id";
    private const string DrainKey = "sharptune.drain";
    /// <summary>An oversized body is read and dropped after the 413 up to this much, so the client gets to read the answer.</summary>
    private const long DrainBytes = 64L << 20;
    private static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(5);

    /// <summary>A slim app bound to one address (an IP or "localhost"), with the limits, a request id on every answer, no server header, no console logging.</summary>
    public static WebApplication Build(string host, int port, HttpLimits limits, TimeSpan shutdownTimeout)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = shutdownTimeout);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = limits.MaxRequestBodyBytes;
            kestrel.Limits.RequestHeadersTimeout = limits.HeadersTimeout;
            kestrel.AddServerHeader = false;
            if (IPAddress.TryParse(host, out var ip)) kestrel.Listen(ip, port);
            else if (host == "localhost") kestrel.ListenLocalhost(port);
            else throw new InvalidInputException($"--host: '{host}' is not an IP address or localhost");
        });
        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            string id = "req_" + Guid.NewGuid().ToString("N")[..24];
            context.Items[RequestIdKey] = id;
            context.Response.Headers["x-request-id"] = id;
            await next(context);
            if (context.Items.ContainsKey(DrainKey)) await Drain(context);
        });
        return app;
    }

    /// <summary>Starts listening; a port in use or not permitted is a <see cref="ListenException"/> saying so in one line.</summary>
    public static async Task StartAsync(WebApplication app, string host, int port, CancellationToken cancellation)
    {
        try
        {
            await app.StartAsync(cancellation);
        }
        catch (IOException e) when (e.InnerException is SocketException socket || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            var code = (e.InnerException as SocketException)?.SocketErrorCode;
            throw new ListenException(code == SocketError.AccessDenied
                ? $"cannot listen on {host}:{port}: not permitted (ports below 1024 need privileges); pick another with --port"
                : $"cannot listen on {host}:{port}: the port is already in use by another program; stop it or pick another with --port", e);
        }
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:8000 (the real port when 0 was asked).</summary>
    public static Uri Address(WebApplication app) => new(app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
        .Features.Get<IServerAddressesFeature>()!.Addresses.First());

    /// <summary>The id of this request, sent back in the x-request-id header; what the server logs a failure under.</summary>
    public static string RequestId(HttpContext context) => context.Items[RequestIdKey] as string ?? context.TraceIdentifier;

    /// <summary>
    /// The request body's bytes (not decoded: the caller checks them as UTF-8). Refused with <see cref="HttpBodyException"/>:
    /// 413 when the declared Content-Length is over <paramref name="limits"/>' cap (before reading any of it) or the body
    /// grows past it, 408 when it does not arrive within the body timeout or trickles slower than Kestrel's minimum rate.
    /// </summary>
    public static async Task<byte[]> ReadBody(HttpContext context, HttpLimits limits)
    {
        long max = limits.MaxRequestBodyBytes;
        if (context.Request.ContentLength is { } declared && declared > max)
        {
            // Answer first, then read the rest and drop it: a client that writes the whole body before reading would
            // otherwise see the connection reset instead of the 413.
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size) size.MaxRequestBodySize = null;
            context.Items[DrainKey] = true;
            context.Response.Headers.Connection = "close";
            throw new HttpBodyException(413, $"the request body ({declared} bytes) is larger than this server's limit of {max} bytes");
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        deadline.CancelAfter(limits.BodyTimeout);
        try
        {
            using var body = new MemoryStream(context.Request.ContentLength is { } n ? (int)Math.Min(n, 1 << 20) : 4096);
            await context.Request.Body.CopyToAsync(body, deadline.Token);
            return body.ToArray();
        }
        catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
        {
            context.Response.Headers.Connection = "close";
            throw new HttpBodyException(408, $"the request body did not arrive within {limits.BodyTimeout.TotalSeconds:0.#} s; send it at once");
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            context.Response.Headers.Connection = "close";
            throw e.StatusCode switch
            {
                StatusCodes.Status413PayloadTooLarge => new HttpBodyException(413, $"the request body is larger than this server's limit of {max} bytes"),
                StatusCodes.Status408RequestTimeout => new HttpBodyException(408, "the request body arrived too slowly (under Kestrel's minimum data rate of 240 bytes/s); send it at once"),
                _ => new HttpBodyException(400, "the request body is malformed (bad chunked encoding or cut off before its Content-Length)"),
            };
        }
    }

    /// <summary>After a 413 answer: reads and drops what the client still sends, within bounds, so it can read the answer.</summary>
    private static async Task Drain(HttpContext context)
    {
        try
        {
            await context.Response.CompleteAsync();
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            deadline.CancelAfter(DrainTime);
            var buffer = new byte[64 * 1024];
            long total = 0;
            int read;
            while (total < DrainBytes && (read = await context.Request.Body.ReadAsync(buffer, deadline.Token)) > 0) total += read;
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or Microsoft.AspNetCore.Http.BadHttpRequestException or InvalidOperationException)
        {
            // The client stopped sending or went away: nothing more to do for it.
        }
    }
}
