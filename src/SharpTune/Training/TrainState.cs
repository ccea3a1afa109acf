namespace SharpTune.Training;

/// <summary>Progress that a checkpoint captures; the loop resumes from any of these exactly.</summary>
public sealed class TrainState
{
    public int Step { get; set; }
    public long TokensSeen { get; set; }
    public double? BestEvalLoss { get; set; }
    /// <summary>The step whose evaluation gave <see cref="BestEvalLoss"/>; its checkpoint survives save_total_limit.</summary>
    public int? BestEvalStep { get; set; }
    public int EvalsWithoutImprovement { get; set; }
    public List<Dictionary<string, double>> LogHistory { get; } = [];
    /// <summary>fp16 runs: the dynamic loss scale (its scale and clean-step count are checkpointed).</summary>
    public DynamicLossScaler? LossScaler { get; init; }
}
