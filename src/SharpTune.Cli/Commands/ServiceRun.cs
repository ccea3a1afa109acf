using SharpTune.Serving;

namespace SharpTune.Cli.Commands;

/// <summary>How `serve` and `jobs serve` run their HTTP service in the foreground.</summary>
public static class ServiceRun
{
    /// <summary>
    /// Starts <paramref name="server"/>, prints <paramref name="started"/> (given the bound address), serves until SIGTERM /
    /// Ctrl+C, prints <paramref name="stopped"/> and disposes the server. A port that is taken is exit 1 in one line.
    /// </summary>
    public static int Serve(HttpService server, CliConsole console, Func<Uri, string> started, string stopped)
    {
        try
        {
            try
            {
                server.StartAsync().GetAwaiter().GetResult();
            }
            catch (ListenException e)
            {
                // Not the input's fault but the machine's (another program holds the port): exit 1, in one line.
                console.Error.WriteLine($"error: {e.Message}");
                return 1;
            }
            console.Out.WriteLine(started(server.Address));
            console.Out.Flush();
            server.WaitForShutdownAsync().GetAwaiter().GetResult();
            console.Out.WriteLine(stopped);
        }
        finally
        {
            server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        return 0;
    }
}
