using System.CommandLine;

namespace SharpTune.Cli;

/// <summary>Where commands write, and the one place that turns exceptions into exit codes.</summary>
public sealed class CliConsole(TextWriter stdout, TextWriter stderr)
{
    public TextWriter Out { get; } = stdout;
    public TextWriter Error { get; } = stderr;

    /// <summary>--debug or SHARPTUNE_DEBUG=1: a failure prints its stack trace after the one-line message.</summary>
    public bool Debug { get; init; }

    /// <summary>
    /// Binds a command body: bad input (InvalidInputException) → exit 2 with one line; a stopped run → its own code; a
    /// failure of the machine (disk full, read-only, out of memory) → exit 1 with one line saying so in words; anything
    /// else → exit 1 with the message and a pointer to --debug. No exception type names reach the user.
    /// </summary>
    public void Bind(Command command, Func<ParseResult, int> body)
    {
        command.SetAction(parse =>
        {
            try
            {
                return body(parse);
            }
            catch (Exception raw)
            {
                var e = FailureText.Unwrap(raw);
                var (code, line) = e switch
                {
                    InvalidInputException => (2, $"error: {e.Message}"),
                    RunStoppedException stopped => (stopped.ExitCode, $"stopped: {e.Message}"),
                    _ => (1, "error: " + FailureText.Describe(e)),
                };
                Error.WriteLine(line);
                if (Debug) Error.WriteLine(raw.ToString());
                return code;
            }
        });
    }
}
