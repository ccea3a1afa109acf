using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>Loss of one micro-batch as a sum over its units (tokens, or pairs), so the trainer can normalise over the whole step.</summary>
public sealed record ObjectiveOutput(Tensor LossSum, IReadOnlyDictionary<string, Tensor> Metrics);

/// <summary>What SFT, pretraining, DPO, ORPO... differ in; the training loop is shared.</summary>
public interface ITrainingObjective
{
    /// <summary>How many units this batch contributes to the step's normaliser (known before any forward).</summary>
    long Units(LabeledBatch batch);
    ObjectiveOutput Compute(CausalLM model, LabeledBatch batch);
    /// <summary>Whether the loss is a mean next-token NLL, so that exp(loss) is a perplexity.</summary>
    bool LossIsTokenNll => false;
}

/// <summary>Next-token cross-entropy over labelled tokens, computed chunk-wise from the hidden states.</summary>
public sealed class CausalLmObjective(int chunkTokens = 1024) : ITrainingObjective
{
    public bool LossIsTokenNll => true;

    public long Units(LabeledBatch batch) => batch.TrainedTokens;

    public ObjectiveOutput Compute(CausalLM model, LabeledBatch batch)
    {
        using var scope = NewDisposeScope();
        var hidden = model.Hidden(batch.Inputs);
        var sum = ChunkedCrossEntropy.Sum(model, hidden, batch.Labels, chunkTokens);
        return new ObjectiveOutput(sum.MoveToOuterDisposeScope(), new Dictionary<string, Tensor>());
    }
}
