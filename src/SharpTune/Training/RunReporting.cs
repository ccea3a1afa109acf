using SharpTune.Config;
using SharpTune.Training.Logging;

namespace SharpTune.Training;

/// <summary>
/// Where a run's figures go. Rank 0 writes metrics.jsonl (whose save step writes the checkpoint), the loss plot, the
/// progress display, TensorBoard and the objective's own callbacks; the other ranks only take part in saves. Every rank
/// keeps its logs and last evaluation for the outcome.
/// </summary>
public sealed class RunReporting : ITrainerCallbacks, IDisposable
{
    private readonly List<StepLog> logs = [];
    private readonly string outputDir;
    private readonly MetricsLog? metrics;
    private readonly LossPlot? plot;
    private readonly TensorBoardWriter? tensorBoard;
    private readonly ITrainerCallbacks sinks;
    private EvalResult? lastEval;

    /// <param name="writer">this rank writes the run's files (rank 0).</param>
    /// <param name="resumedAtStep">the checkpoint step a resume starts from; TensorBoard marks it.</param>
    public RunReporting(TrainConfig config, TextWriter console, IProgressCallbacks? progress, bool writer, Action<TrainState> save, int? resumedAtStep,
        IReadOnlyList<ITrainerCallbacks> objectiveCallbacks)
    {
        outputDir = config.OutputDir;
        if (!writer)
        {
            sinks = new SaveOnlyCallbacks(save);
            return;
        }
        metrics = new MetricsLog(config.OutputDir, progress is null ? console : TextWriter.Null) { SaveCheckpoint = save };
        plot = new LossPlot(config.OutputDir);
        tensorBoard = config.UseTensorboard ? new TensorBoardWriter(config.OutputDir, resumedAtStep: resumedAtStep) : null;
        sinks = new CompositeCallbacks([metrics, plot, .. progress is null ? Array.Empty<ITrainerCallbacks>() : [progress],
            .. tensorBoard is null ? Array.Empty<ITrainerCallbacks>() : [tensorBoard], .. objectiveCallbacks]);
    }

    public void OnLog(TrainState state, StepLog log)
    {
        logs.Add(log);
        sinks.OnLog(state, log);
    }

    public void OnEval(TrainState state, EvalResult result)
    {
        lastEval = result;
        sinks.OnEval(state, result);
    }

    public void OnSave(TrainState state) => sinks.OnSave(state);

    /// <summary>A resume at <paramref name="step"/>: metrics.jsonl forgets the steps after it, the plot reloads what is left.</summary>
    public void Resumed(int step)
    {
        metrics?.TruncateAfter(step);
        plot?.LoadMetricsLog(Path.Combine(outputDir, "metrics.jsonl"));
    }

    /// <summary>Where the run left its results; adapter and merged folders null where none was written.</summary>
    public TrainOutcome Outcome(TrainState state, string? adapterDir = null, string? mergedDir = null, bool interrupted = false) =>
        new(state.Step, logs.LastOrDefault()?.Loss ?? state.LogHistory.LastOrDefault(h => h.ContainsKey("loss"))?["loss"], lastEval, outputDir, adapterDir, mergedDir, logs,
            Interrupted: interrupted);

    public void Dispose() => tensorBoard?.Dispose();

    private sealed class SaveOnlyCallbacks(Action<TrainState> save) : ITrainerCallbacks
    {
        public void OnLog(TrainState state, StepLog log) { }
        public void OnEval(TrainState state, EvalResult result) { }
        public void OnSave(TrainState state) => save(state);
    }
}
