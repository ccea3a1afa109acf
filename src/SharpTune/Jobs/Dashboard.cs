using Microsoft.AspNetCore.Http;

namespace SharpTune.Jobs;

/// <summary>The web dashboard: static HTML, JS and CSS embedded in the assembly (works offline). The files hold no data; the page asks for the key and sends it as a bearer header on every API call.</summary>
public static class Dashboard
{
    public sealed record Asset(string Route, string Resource, string ContentType);

    public static IReadOnlyList<Asset> Assets { get; } =
    [
        new("/", "index.html", "text/html; charset=utf-8"),
        new("/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"),
        new("/dashboard.css", "dashboard.css", "text/css; charset=utf-8"),
    ];

    public static async Task Serve(HttpContext context, Asset asset)
    {
        using var stream = typeof(Dashboard).Assembly.GetManifestResourceStream("SharpTune.Jobs.Dashboard." + asset.Resource)
            ?? throw new InvalidOperationException($"dashboard asset {asset.Resource} is not embedded");
        context.Response.ContentType = asset.ContentType;
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:";
        await stream.CopyToAsync(context.Response.Body, context.RequestAborted);
    }
}
