using SharpTune.Modeling;
using static TorchSharp.torch;
using SharpTune.Tokenization;

namespace SharpTune.Training;

/// <summary>One micro-batch: the model inputs and the labels (-100 = not trained).</summary>
/// <param name="Reference">for preference batches: the reference model's summed log-probs per row, when precomputed.</param>
/// <param name="Desirable">for KTO batches: per example, whether its completion is desirable.</param>
/// <param name="Rollout">for GRPO batches: what sampling and scoring the completions produced.</param>
public sealed record LabeledBatch(ForwardBatch Inputs, Tensor Labels, Tensor? Reference = null, Tensor? Desirable = null, RolloutData? Rollout = null) : IDisposable
{
    /// <summary>Tokens that carry a loss after the causal shift.</summary>
    public long TrainedTokens => Labels[.., 1..].ne(TokenLabels.IgnoreIndex).sum().item<long>();

    /// <summary>This batch on <paramref name="device"/> (itself when already there or null); the host copy is disposed.</summary>
    public LabeledBatch MoveTo(Device? device)
    {
        if (device is null || Labels.device == device) return this;
        var moved = new LabeledBatch(
            new ForwardBatch(Inputs.InputIds.to(device), Inputs.AttentionMask?.to(device), Inputs.PositionIds?.to(device), Inputs.SegmentIds?.to(device)),
            Labels.to(device), Reference?.to(device), Desirable?.to(device), Rollout?.To(device));
        Dispose();
        return moved;
    }

    public void Dispose()
    {
        Inputs.InputIds.Dispose();
        Inputs.AttentionMask?.Dispose();
        Inputs.PositionIds?.Dispose();
        Inputs.SegmentIds?.Dispose();
        Labels.Dispose();
        Reference?.Dispose();
        Desirable?.Dispose();
        Rollout?.Dispose();
    }
}

/// <summary>
/// A GRPO micro-batch's rollout: per-completion advantages (B), per-token log-probs (B, T-1) of the policy that sampled
/// it (kept when num_iterations &gt; 1) and of the reference (when beta ≠ 0), and host-side figures (rewards, lengths).
/// </summary>
public sealed record RolloutData(Tensor Advantages, Tensor? OldLogProbs, Tensor? RefLogProbs, IReadOnlyDictionary<string, double> Figures) : IDisposable
{
    public RolloutData To(Device device) => new(Advantages.to(device), OldLogProbs?.to(device), RefLogProbs?.to(device), Figures);

    public RolloutData Copy() => new(Advantages.clone(), OldLogProbs?.clone(), RefLogProbs?.clone(), Figures);

    public void Dispose()
    {
        Advantages.Dispose();
        OldLogProbs?.Dispose();
        RefLogProbs?.Dispose();
    }
}

/// <summary>A batch source with state of its own that a checkpoint must carry for an exact resume (GRPO's reused rollouts).</summary>
public interface ICheckpointedSource
{
    void SaveState(string checkpointDir);
    void RestoreState(string checkpointDir);
}

/// <summary>Deterministic batches: the same (epoch, index) always gives the same batch, which makes resume exact.</summary>
public interface IBatchSource
{
    int BatchesPerEpoch { get; }
    LabeledBatch Batch(int epoch, int index);
}
