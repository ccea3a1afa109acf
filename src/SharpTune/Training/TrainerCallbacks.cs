namespace SharpTune.Training;

/// <summary>What the loop reports out: one record per logging step, per evaluation, per checkpoint.</summary>
public interface ITrainerCallbacks
{
    void OnLog(TrainState state, StepLog log);
    void OnEval(TrainState state, EvalResult result);
    void OnSave(TrainState state);
}

public sealed record StepLog(int Step, double Loss, double GradNorm, double LearningRate, double TokensPerSecond, long TokensSeen, double Epoch, IReadOnlyDictionary<string, double> Metrics);
/// <param name="Perplexity">exp(loss) when the loss is a token NLL; null for preference objectives.</param>
public sealed record EvalResult(int Step, double Loss, double? Perplexity, long Tokens, IReadOnlyDictionary<string, double> Metrics);
