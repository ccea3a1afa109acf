namespace SharpTune.Training;

/// <summary>Where a run left its results.</summary>
/// <param name="Interrupted">Stopped on the cancellation token before the last step: a checkpoint holds step <paramref name="Steps"/>, no top-level model was written.</param>
/// <param name="AlreadyFinished">A resume of a run that had finished (its last checkpoint is the last step and its model is written): nothing was trained or written.</param>
public sealed record TrainOutcome(int Steps, double? FinalLoss, EvalResult? FinalEval, string OutputDir, string? AdapterDir, string? MergedDir, IReadOnlyList<StepLog> Logs,
    bool Interrupted = false, bool AlreadyFinished = false);
