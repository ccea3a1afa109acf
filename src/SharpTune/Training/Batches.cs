using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>One micro-batch: the model inputs and the labels (-100 = not trained).</summary>
public sealed record LabeledBatch(ForwardBatch Inputs, Tensor Labels) : IDisposable
{
    /// <summary>Tokens that carry a loss after the causal shift.</summary>
    public long TrainedTokens => Labels[.., 1..].ne(CausalLmLoss.IgnoreIndex).sum().item<long>();

    public void Dispose()
    {
        Inputs.InputIds.Dispose();
        Inputs.AttentionMask?.Dispose();
        Inputs.PositionIds?.Dispose();
        Inputs.SegmentIds?.Dispose();
        Labels.Dispose();
    }
}

/// <summary>Deterministic batches: the same (epoch, index) always gives the same batch, which makes resume exact.</summary>
public interface IBatchSource
{
    int BatchesPerEpoch { get; }
    LabeledBatch Batch(int epoch, int index);
}
