namespace SharpTune.Training;

/// <summary>
/// early_stopping_patience: the best evaluation loss so far and its step are kept in the run's state (so they survive a
/// resume); the run stops after patience evaluations in a row without a lower loss.
/// </summary>
public sealed class EarlyStopping(int? patience)
{
    /// <summary>Records the evaluation; true when the run should stop now.</summary>
    public bool Stops(TrainState state, EvalResult result)
    {
        if (state.BestEvalLoss is null || result.Loss < state.BestEvalLoss)
        {
            state.BestEvalLoss = result.Loss;
            state.BestEvalStep = state.Step;
            state.EvalsWithoutImprovement = 0;
            return false;
        }
        return ++state.EvalsWithoutImprovement >= (patience ?? int.MaxValue);
    }
}
