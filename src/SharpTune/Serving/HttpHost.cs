using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace SharpTune.Serving;

/// <summary>Kestrel set-up and body reading shared by SharpTune's HTTP services (the OpenAI server, the job service).</summary>
public static class HttpHost
{
    /// <summary>A slim app bound to one address (an IP or "localhost"), with a body limit and no server header or console logging.</summary>
    public static WebApplication Build(string host, int port, long maxRequestBodyBytes, TimeSpan shutdownTimeout)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = shutdownTimeout);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = maxRequestBodyBytes;
            kestrel.AddServerHeader = false;
            if (IPAddress.TryParse(host, out var ip)) kestrel.Listen(ip, port);
            else if (host == "localhost") kestrel.ListenLocalhost(port);
            else throw new InvalidInputException($"--host: '{host}' is not an IP address or localhost");
        });
        return builder.Build();
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:8000 (the real port when 0 was asked).</summary>
    public static Uri Address(WebApplication app) => new(app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
        .Features.Get<IServerAddressesFeature>()!.Addresses.First());

    /// <summary>The request body as UTF-8 text, or null when it is larger than <paramref name="maxBytes"/> (the caller answers 413).</summary>
    public static async Task<string?> ReadBody(HttpContext context, long maxBytes)
    {
        if (context.Request.ContentLength > maxBytes) return null;
        try
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            return await reader.ReadToEndAsync(context.RequestAborted);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            return null;
        }
    }
}
