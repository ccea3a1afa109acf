using TorchSharp;
using static TorchSharp.torch;
using SharpTune.Tokenization;

namespace SharpTune.Data;

/// <summary>
/// One micro-batch as the model and loss take it: int64 (B, T) tensors. PositionIds and SegmentIds are set for packed
/// rows (positions restart at 0 per document; segment 1, 2, ... per document, 0 on padding) and null otherwise.
/// </summary>
public sealed record TrainBatch(Tensor InputIds, Tensor Labels, Tensor AttentionMask, Tensor? PositionIds, Tensor? SegmentIds) : IDisposable
{
    public void Dispose()
    {
        InputIds.Dispose();
        Labels.Dispose();
        AttentionMask.Dispose();
        PositionIds?.Dispose();
        SegmentIds?.Dispose();
    }
}

/// <summary>One training row as plain arrays (what a TrainBatch row holds before padding).</summary>
public sealed record PackedRow(int[] InputIds, int[] Labels, int[] PositionIds, int[] SegmentIds);

/// <summary>
/// Deterministic, resumable batching: the rows (or packed bins) of an epoch are shuffled by (seed, epoch), so
/// Batch(epoch, index) is the same batch on every call and after a restart; a trainer saves only (epoch, index).
/// </summary>
public sealed class BatchPlan
{
    private readonly IReadOnlyList<TokenizedExample> _examples;
    private readonly IReadOnlyList<int[]> _units;
    private readonly int _microBatchSize;
    private readonly int _sequenceLen;
    private readonly bool _packing;
    private readonly bool _padToSequenceLen;
    private readonly int _padTokenId;
    private readonly long _seed;
    private readonly object _orderLock = new();
    private (int Epoch, int[] Order)? _lastOrder;

    public BatchPlan(IReadOnlyList<TokenizedExample> examples, int microBatchSize, int sequenceLen, bool packing, bool padToSequenceLen, int padTokenId, long seed)
    {
        if (microBatchSize < 1) throw new InvalidInputException($"micro_batch_size: {microBatchSize}; expected ≥ 1");
        if (sequenceLen < 2) throw new InvalidInputException($"sequence_len: {sequenceLen}; expected ≥ 2");
        if (examples.Count == 0) throw new InvalidInputException("no training rows to batch; check the datasets and the dropped-row counts above");
        _examples = examples;
        _microBatchSize = microBatchSize;
        _sequenceLen = sequenceLen;
        _packing = packing;
        _padToSequenceLen = padToSequenceLen;
        _padTokenId = padTokenId;
        _seed = seed;
        var lengths = examples.Select(e => e.InputIds.Length).ToArray();
        int longest = lengths.Max();
        if (longest > sequenceLen)
            throw new InvalidInputException($"a row has {longest} tokens, more than sequence_len {sequenceLen}; prepare the data with the same sequence_len");
        _units = packing ? Packing.BestFitDecreasing(lengths, sequenceLen) : Enumerable.Range(0, examples.Count).Select(i => new[] { i }).ToArray();
        Tokens = lengths.Sum(l => (long)l);
        PackingEfficiency = packing ? Packing.Efficiency(_units, lengths, sequenceLen) : Tokens / ((double)_units.Count * sequenceLen);
    }

    /// <summary>Training rows per epoch: packed bins, or the examples themselves without packing.</summary>
    public int RowsPerEpoch => _units.Count;
    public int BatchesPerEpoch => (_units.Count + _microBatchSize - 1) / _microBatchSize;
    /// <summary>Tokens in all examples (one epoch).</summary>
    public long Tokens { get; }
    /// <summary>Non-padding tokens over rows × sequence_len.</summary>
    public double PackingEfficiency { get; }

    /// <summary>Which rows make up each epoch position (by index into the epoch order).</summary>
    public int[] EpochOrder(int epoch)
    {
        lock (_orderLock)
        {
            if (_lastOrder is { } last && last.Epoch == epoch) return last.Order;
            var order = SeededShuffle.Permutation(_units.Count, _seed * 1_000_003L + epoch);
            _lastOrder = (epoch, order);
            return order;
        }
    }

    /// <summary>Training row <paramref name="unit"/> (a bin when packing): documents concatenated, each with its own positions and segment.</summary>
    public PackedRow Row(int unit)
    {
        var docs = _units[unit];
        int length = docs.Sum(d => _examples[d].InputIds.Length);
        var ids = new int[length];
        var labels = new int[length];
        var positions = new int[length];
        var segments = new int[length];
        int at = 0;
        for (int k = 0; k < docs.Length; k++)
        {
            var e = _examples[docs[k]];
            e.InputIds.CopyTo(ids, at);
            e.Labels.CopyTo(labels, at);
            // The loss predicts labels[t] from position t-1: a document's first token must not be predicted from the previous document.
            labels[at] = TokenLabels.IgnoreIndex;
            for (int t = 0; t < e.InputIds.Length; t++)
            {
                positions[at + t] = t;
                segments[at + t] = k + 1;
            }
            at += e.InputIds.Length;
        }
        return new PackedRow(ids, labels, positions, segments);
    }

    public TrainBatch Batch(int epoch, int index)
    {
        if (index < 0 || index >= BatchesPerEpoch) throw new ArgumentOutOfRangeException(nameof(index), $"batch {index} of {BatchesPerEpoch}");
        var order = EpochOrder(epoch);
        int first = index * _microBatchSize;
        var rows = Enumerable.Range(first, Math.Min(_microBatchSize, _units.Count - first)).Select(i => Row(order[i])).ToArray();
        int b = rows.Length;
        int t = _padToSequenceLen ? _sequenceLen : rows.Max(r => r.InputIds.Length);
        var ids = new long[b * t];
        var labels = new long[b * t];
        var mask = new long[b * t];
        var positions = new long[b * t];
        var segments = new long[b * t];
        Array.Fill(ids, _padTokenId);
        Array.Fill(labels, TokenLabels.IgnoreIndex);
        for (int r = 0; r < b; r++)
        {
            var row = rows[r];
            for (int j = 0; j < row.InputIds.Length; j++)
            {
                int k = r * t + j;
                ids[k] = row.InputIds[j];
                labels[k] = row.Labels[j];
                mask[k] = 1;
                positions[k] = row.PositionIds[j];
                segments[k] = row.SegmentIds[j];
            }
        }
        long[] shape = [b, t];
        return new TrainBatch(
            torch.tensor(ids, shape, ScalarType.Int64),
            torch.tensor(labels, shape, ScalarType.Int64),
            torch.tensor(mask, shape, ScalarType.Int64),
            _packing ? torch.tensor(positions, shape, ScalarType.Int64) : null,
            _packing ? torch.tensor(segments, shape, ScalarType.Int64) : null);
    }
}
