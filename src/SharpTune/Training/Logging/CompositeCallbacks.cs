namespace SharpTune.Training.Logging;

/// <summary>Fans each trainer event out to several callbacks, in the order given.</summary>
public sealed class CompositeCallbacks(params ITrainerCallbacks[] callbacks) : ITrainerCallbacks
{
    public IReadOnlyList<ITrainerCallbacks> Callbacks { get; } = callbacks;

    public void OnLog(TrainState state, StepLog log)
    {
        foreach (var callback in Callbacks) callback.OnLog(state, log);
    }

    public void OnEval(TrainState state, EvalResult result)
    {
        foreach (var callback in Callbacks) callback.OnEval(state, result);
    }

    public void OnSave(TrainState state)
    {
        foreach (var callback in Callbacks) callback.OnSave(state);
    }
}
