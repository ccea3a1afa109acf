using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Hosting;

namespace SharpTune.Serving;

/// <summary>
/// The lifetime SharpTune's HTTP services share (the OpenAI server, the job service): one Kestrel app bound to one
/// address, started (a taken port is a <see cref="ListenException"/>), served until SIGTERM / Ctrl+C, stopped, disposed.
/// </summary>
public abstract class HttpService : IAsyncDisposable
{
    private readonly string host;
    private readonly int port;

    /// <summary>The app the service maps its routes on, with the limits and a request id on every answer (<see cref="HttpHost.Build"/>).</summary>
    protected WebApplication App { get; }

    protected HttpService(string host, int port, HttpLimits limits, TimeSpan shutdownTimeout)
    {
        this.host = host;
        this.port = port;
        App = HttpHost.Build(host, port, limits, shutdownTimeout);
    }

    /// <summary>The bound address, e.g. http://127.0.0.1:8000 (the real port when 0 was asked).</summary>
    public Uri Address => HttpHost.Address(App);

    /// <summary>Starts listening; a port in use is a <see cref="ListenException"/>.</summary>
    public Task StartAsync(CancellationToken cancellation = default) => HttpHost.StartAsync(App, host, port, cancellation);

    /// <summary>After <see cref="StartAsync"/>: serves until SIGTERM / Ctrl+C (or the token), then lets running requests finish.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellation = default) => App.WaitForShutdownAsync(cancellation);

    public Task StopAsync(CancellationToken cancellation = default) => App.StopAsync(cancellation);

    public async ValueTask DisposeAsync()
    {
        await App.DisposeAsync();
        await DisposeServiceAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases what the service holds besides the app (its queue), after the app has stopped answering.</summary>
    protected abstract ValueTask DisposeServiceAsync();
}
