using SharpTune.Data;
using SharpTune.Modeling;

namespace SharpTune.Training;

/// <summary>Adapts the data pipeline's batches to the trainer.</summary>
public sealed class BatchPlanSource(BatchPlan plan) : IBatchSource
{
    public int BatchesPerEpoch => plan.BatchesPerEpoch;

    public LabeledBatch Batch(int epoch, int index)
    {
        var batch = plan.Batch(epoch, index);
        // Without padding or packing the mask says nothing: leaving it out lets attention take the causal fast path.
        var mask = batch.SegmentIds is null && batch.AttentionMask.all().item<bool>() ? null : batch.AttentionMask;
        if (mask is null) batch.AttentionMask.Dispose();
        return new LabeledBatch(new ForwardBatch(batch.InputIds, mask, batch.PositionIds, batch.SegmentIds), batch.Labels);
    }
}
