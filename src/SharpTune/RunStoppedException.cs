namespace SharpTune;

/// <summary>
/// A run that stopped on purpose before its end (not a failure of the program, not bad input): the CLI prints the
/// message as one `stopped:` line and exits with <see cref="ExitCode"/>. The exit codes are documented in
/// docs/training.md.
/// </summary>
public sealed class RunStoppedException(int exitCode, string message) : Exception(message)
{
    /// <summary>The loss watchdog (loss_watchdog_threshold) stopped training and saved a checkpoint.</summary>
    public const int LossWatchdogExitCode = 3;

    public int ExitCode { get; } = exitCode;
}
