using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>One micro-batch: the model inputs and the labels (-100 = not trained).</summary>
/// <param name="Reference">for preference batches: the reference model's summed log-probs per row, when precomputed.</param>
/// <param name="Desirable">for KTO batches: per example, whether its completion is desirable.</param>
public sealed record LabeledBatch(ForwardBatch Inputs, Tensor Labels, Tensor? Reference = null, Tensor? Desirable = null) : IDisposable
{
    /// <summary>Tokens that carry a loss after the causal shift.</summary>
    public long TrainedTokens => Labels[.., 1..].ne(CausalLmLoss.IgnoreIndex).sum().item<long>();

    /// <summary>This batch on <paramref name="device"/> (itself when already there or null); the host copy is disposed.</summary>
    public LabeledBatch MoveTo(Device? device)
    {
        if (device is null || Labels.device == device) return this;
        var moved = new LabeledBatch(
            new ForwardBatch(Inputs.InputIds.to(device), Inputs.AttentionMask?.to(device), Inputs.PositionIds?.to(device), Inputs.SegmentIds?.to(device)),
            Labels.to(device), Reference?.to(device), Desirable?.to(device));
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
    }
}

/// <summary>Deterministic batches: the same (epoch, index) always gives the same batch, which makes resume exact.</summary>
public interface IBatchSource
{
    int BatchesPerEpoch { get; }
    LabeledBatch Batch(int epoch, int index);
}
