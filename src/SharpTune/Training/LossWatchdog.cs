namespace SharpTune.Training;

/// <summary>loss_watchdog_threshold / _patience: the run stops when the logged loss stays above the threshold for patience logging steps in a row.</summary>
public sealed class LossWatchdog(double? threshold, int patience)
{
    private int strikes;

    /// <summary>Counts this logging step's loss; true when the run must stop (after saving a checkpoint).</summary>
    public bool Trips(double loss)
    {
        strikes = threshold is { } limit && loss > limit ? strikes + 1 : 0;
        return strikes >= patience;
    }

    public RunStoppedException Stopped(double loss, int step) => new(RunStoppedException.LossWatchdogExitCode,
        $"loss watchdog: loss {loss:F4} stayed above loss_watchdog_threshold {threshold} for {strikes} logging steps; stopped with a checkpoint at step {step}");
}
