using System.CommandLine;

namespace SharpTune.Cli;

/// <summary>Where commands write, and the one place that turns exceptions into exit codes.</summary>
public sealed class CliConsole(TextWriter stdout, TextWriter stderr)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;

    /// <summary>Binds a command body: InvalidInputException → exit 2 with one line, any other failure → exit 1.</summary>
    public void Bind(Command command, Func<ParseResult, int> body)
    {
        command.SetAction(parse =>
        {
            try
            {
                return body(parse);
            }
            catch (InvalidInputException e)
            {
                Error.WriteLine($"error: {e.Message}");
                return 2;
            }
            catch (RunStoppedException e)
            {
                Error.WriteLine($"stopped: {e.Message}");
                return e.ExitCode;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Error.WriteLine($"error: {e.GetType().Name}: {e.Message}");
                return 1;
            }
        });
    }
}
