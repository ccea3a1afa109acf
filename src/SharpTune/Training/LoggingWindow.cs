using System.Diagnostics;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// What the loop gathers between two logging steps: the summed loss and metrics (kept on the device), the last step's
/// gradient norm, the tokens and the time. <see cref="Close"/> is the only place the loop reads values back from the
/// device, once per logging step.
/// </summary>
public sealed class LoggingWindow(Distributed.DataParallel? parallel, Func<IReadOnlyDictionary<string, double>>? sampleMetrics, long tokensSeen) : IDisposable
{
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly Dictionary<string, Tensor> metricSums = [];
    private Tensor? lossSum;
    private Tensor? lastGradNorm;
    private long tokensAtStart = tokensSeen;
    private int steps;

    /// <summary>One micro-batch's step-normalised loss, and its metrics as a share of the step (1/accumulation each).</summary>
    public void AddMicroBatch(Tensor scaledLoss, IReadOnlyDictionary<string, Tensor> metrics, int accumulation)
    {
        Accumulate(ref lossSum, scaledLoss.detach());
        foreach (var (name, value) in metrics)
        {
            metricSums.TryGetValue(name, out var sum);
            Accumulate(ref sum, value.detach() / accumulation);
            metricSums[name] = sum!;
        }
    }

    /// <summary>The end of an optimizer step with its pre-clip gradient norm (kept until the next step's).</summary>
    public void EndStep(Tensor gradNorm)
    {
        lastGradNorm?.Dispose();
        lastGradNorm = gradNorm.DetachFromDisposeScope();
        steps++;
    }

    /// <summary>The logging step's figures, means over the window's steps (over all ranks); the window starts again.</summary>
    public StepLog Close(int step, long tokensSeen, double learningRate, double epoch)
    {
        double loss = lossSum!.item<float>() / steps;
        var metrics = metricSums.ToDictionary(m => m.Key, m => (double)m.Value.item<float>() / steps);
        if (parallel is not null) (loss, metrics) = GlobalFigures(parallel, loss, metrics);
        foreach (var (name, value) in sampleMetrics?.Invoke() ?? new Dictionary<string, double>()) metrics[name] = value;
        double seconds = Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
        var log = new StepLog(step, loss, lastGradNorm!.item<float>(), learningRate, (tokensSeen - tokensAtStart) / seconds, tokensSeen, epoch, metrics);
        lossSum.Dispose();
        lossSum = null;
        foreach (var m in metricSums.Values) m.Dispose();
        metricSums.Clear();
        steps = 0;
        tokensAtStart = tokensSeen;
        clock.Restart();
        return log;
    }

    public void Dispose()
    {
        lastGradNorm?.Dispose();
        lossSum?.Dispose();
        foreach (var m in metricSums.Values) m.Dispose();
    }

    /// <summary>The logging step's loss and metrics over the whole job: losses are already global-token normalised, so they add; metrics are per-rank means.</summary>
    private static (double Loss, Dictionary<string, double> Metrics) GlobalFigures(Distributed.DataParallel parallel, double loss, Dictionary<string, double> metrics)
    {
        var names = metrics.Keys.Order(StringComparer.Ordinal).ToList();
        double[] figures = [loss, .. names.Select(n => metrics[n])];
        parallel.SumInPlace(figures);
        return (figures[0], names.Select((n, k) => (n, figures[1 + k] / parallel.WorldSize)).ToDictionary(x => x.n, x => x.Item2));
    }

    private static void Accumulate(ref Tensor? total, Tensor value)
    {
        if (total is null) total = value.clone().DetachFromDisposeScope();
        else total.add_(value);
    }
}
