using System.Globalization;

namespace SharpTune.Training.Logging;

/// <summary>Plain-text progress lines; the CLI's live progress bar reuses the same text.</summary>
public static class ProgressText
{
    /// <summary>e.g. <c>step  12/100 (12%)  epoch 0.36  loss 2.3456  lr 1.00e-04  grad_norm 0.812  tok/s 1234  eta 01:23</c>.</summary>
    public static string Step(StepLog log, int totalSteps, TimeSpan? eta)
    {
        int width = totalSteps.ToString(CultureInfo.InvariantCulture).Length;
        double percent = totalSteps > 0 ? 100.0 * log.Step / totalSteps : 0;
        return string.Create(CultureInfo.InvariantCulture,
            $"step {log.Step.ToString(CultureInfo.InvariantCulture).PadLeft(width)}/{totalSteps} ({Math.Floor(percent):0}%)  {Metrics(log)}  eta {Eta(eta)}");
    }

    /// <summary>The values without the step counter (the progress bar shows the counter itself).</summary>
    public static string Metrics(StepLog log)
    {
        var extra = string.Concat(log.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal)
            .Select(m => string.Create(CultureInfo.InvariantCulture, $"  {m.Key} {m.Value:0.0000}")));
        return string.Create(CultureInfo.InvariantCulture,
            $"epoch {log.Epoch:0.00}  loss {log.Loss:0.0000}  lr {log.LearningRate:0.00e+00}  grad_norm {log.GradNorm:0.000}  tok/s {log.TokensPerSecond:0}{extra}");
    }

    /// <summary>e.g. <c>eval  step  50/100  loss 2.1000  perplexity 8.17  accuracy 0.5000</c>.</summary>
    public static string Eval(EvalResult result, int totalSteps)
    {
        int width = totalSteps.ToString(CultureInfo.InvariantCulture).Length;
        var extra = string.Concat(result.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal)
            .Select(m => string.Create(CultureInfo.InvariantCulture, $"  {m.Key} {m.Value:0.0000}")));
        return string.Create(CultureInfo.InvariantCulture,
            $"eval  step {result.Step.ToString(CultureInfo.InvariantCulture).PadLeft(width)}/{totalSteps}  loss {result.Loss:0.0000}{(result.Perplexity is { } p ? $"  perplexity {p:0.00}" : "")}{extra}");
    }

    /// <summary><c>--:--</c> when unknown, <c>mm:ss</c> under an hour, <c>h:mm:ss</c> under a day, <c>Nd hh:mm:ss</c> beyond.
    /// Rounded up to the whole second so the display reaches 00:00 only when nothing is left.</summary>
    public static string Eta(TimeSpan? eta)
    {
        if (eta is not { } value || value < TimeSpan.Zero || value.TotalDays >= 10000) return "--:--";
        long seconds = (long)Math.Ceiling(value.TotalSeconds - 1e-9);
        long days = seconds / 86400, hours = seconds / 3600 % 24, minutes = seconds / 60 % 60, secs = seconds % 60;
        return days > 0 ? string.Create(CultureInfo.InvariantCulture, $"{days}d {hours:00}:{minutes:00}:{secs:00}")
            : hours > 0 ? string.Create(CultureInfo.InvariantCulture, $"{hours}:{minutes:00}:{secs:00}")
            : string.Create(CultureInfo.InvariantCulture, $"{minutes:00}:{secs:00}");
    }
}

/// <summary>
/// Estimates time left from measured step times. The interval before the first log carries start-up cost (JIT, first
/// allocations), so once a second log exists the rate is measured from the first log onward.
/// </summary>
public sealed class EtaEstimator(int totalSteps, int startStep = 0, TimeProvider? time = null)
{
    private readonly TimeProvider time = time ?? TimeProvider.System;
    private long startTimestamp = (time ?? TimeProvider.System).GetTimestamp();
    private int startStep = startStep;
    private (long Timestamp, int Step)? firstLog;

    /// <summary>Records that <paramref name="step"/> steps are done now; returns the estimated time left (null if unknown).</summary>
    public TimeSpan? Update(int step)
    {
        long now = time.GetTimestamp();
        if (step >= totalSteps) return TimeSpan.Zero;
        (long since, int fromStep) = firstLog is { } first && step > first.Step ? (first.Timestamp, first.Step) : (startTimestamp, startStep);
        firstLog ??= (now, step);
        if (step <= fromStep) return null;
        double secondsPerStep = time.GetElapsedTime(since, now).TotalSeconds / (step - fromStep);
        return TimeSpan.FromSeconds(secondsPerStep * (totalSteps - step));
    }

    /// <summary>Restarts the clock, e.g. after a pause that should not count as step time.</summary>
    public void Restart(int step)
    {
        startTimestamp = time.GetTimestamp();
        startStep = step;
        firstLog = null;
    }
}

/// <summary>
/// A progress display. Total steps are known only once the run has sized its data, so whoever creates the display
/// early calls <see cref="Begin"/> when they are (the step-time clock starts there).
/// </summary>
public interface IProgressCallbacks : ITrainerCallbacks
{
    void Begin(int totalSteps, int startStep);
}

/// <summary>One plain line per log and per evaluation: what a non-terminal stdout (CI logs, files) gets.</summary>
public sealed class ConsoleProgress : IProgressCallbacks
{
    private readonly TextWriter output;
    private readonly TimeProvider? time;
    private int totalSteps;
    private EtaEstimator eta;

    public ConsoleProgress(TextWriter output, int totalSteps = 0, int startStep = 0, TimeProvider? time = null)
    {
        this.output = output;
        this.time = time;
        this.totalSteps = totalSteps;
        eta = new EtaEstimator(totalSteps, startStep, time);
    }

    public void Begin(int totalSteps, int startStep)
    {
        this.totalSteps = totalSteps;
        eta = new EtaEstimator(totalSteps, startStep, time);
    }

    public void OnLog(TrainState state, StepLog log) => output.WriteLine(ProgressText.Step(log, totalSteps, eta.Update(log.Step)));
    public void OnEval(TrainState state, EvalResult result) => output.WriteLine(ProgressText.Eval(result, totalSteps));
    public void OnSave(TrainState state) { }
}
