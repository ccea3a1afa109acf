using SharpTune.Modeling;
using static TorchSharp.torch;
using SharpTune.Tokenization;

namespace SharpTune.Inference;

/// <summary>Rows to score; ragged rows are right-padded (mask 0, label -100). Labels default to input_ids.</summary>
public sealed record ScoreRequest(long[][] InputIds, long[][]? Labels = null, long[][]? AttentionMask = null);

/// <summary>The `score` output contract of DESIGN.md, in float32 with the HF shift convention.</summary>
public sealed record ScoreResult(double Loss, double[] LogprobSumPerRow, long[] NLabelTokensPerRow, float[][] LastLogits);

public static class Scorer
{
    public static ScoreResult Score(CausalLM model, ScoreRequest request)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (hostIds, hostLabels, hostMask) = Batch(request, model.Config.VocabSize);
        var (ids, labels, mask) = (hostIds.to(model.Device), hostLabels.to(model.Device), hostMask.to(model.Device));
        var logits = model.Forward(new ForwardBatch(ids, mask));
        var (sum, count) = CausalLmLoss.SumAndCount(logits, labels);
        double loss = count == 0 ? double.NaN : sum.item<float>() / (double)count;
        var tokenLogProbs = CausalLmLoss.TokenLogProbs(logits, labels, ScalarType.Float64);
        var perRow = tokenLogProbs.sum(1).cpu().data<double>().ToArray();
        var counts = hostLabels[.., 1..].ne(TokenLabels.IgnoreIndex).sum(1).data<long>().ToArray();
        // The last real (unpadded) position of each row.
        var lastIndex = mask.sum(1) - 1;
        var last = logits.gather(1, lastIndex.view(-1, 1, 1).expand(-1, 1, logits.shape[2])).squeeze(1);
        var hostLast = last.cpu();
        var lastRows = Enumerable.Range(0, (int)hostLast.shape[0]).Select(r => hostLast[r].data<float>().ToArray()).ToArray();
        return new ScoreResult(loss, perRow, counts, lastRows);
    }

    private static (Tensor Ids, Tensor Labels, Tensor Mask) Batch(ScoreRequest request, int vocabSize)
    {
        var rows = request.InputIds;
        if (rows.Length == 0 || rows.Any(r => r.Length == 0)) throw new InvalidInputException("input_ids: needs at least one non-empty row");
        int width = rows.Max(r => r.Length);
        var ids = new long[rows.Length * width];
        var labels = new long[rows.Length * width];
        var mask = new long[rows.Length * width];
        for (int r = 0; r < rows.Length; r++)
        {
            var rowLabels = request.Labels?[r] ?? rows[r];
            var rowMask = request.AttentionMask?[r];
            if (rowLabels.Length != rows[r].Length) throw new InvalidInputException($"labels row {r}: {rowLabels.Length} values, input_ids row has {rows[r].Length}");
            if (rowMask is not null && rowMask.Length != rows[r].Length) throw new InvalidInputException($"attention_mask row {r}: {rowMask.Length} values, input_ids row has {rows[r].Length}");
            for (int t = 0; t < width; t++)
            {
                int i = r * width + t;
                bool real = t < rows[r].Length;
                ids[i] = real ? rows[r][t] : 0;
                if (real && (ids[i] < 0 || ids[i] >= vocabSize)) throw new InvalidInputException($"input_ids row {r} position {t}: token id {ids[i]} is outside the vocabulary [0, {vocabSize})");
                mask[i] = real ? rowMask?[t] ?? 1 : 0;
                labels[i] = real && mask[i] == 1 ? rowLabels[t] : TokenLabels.IgnoreIndex;
            }
        }
        if (request.Labels is not null && request.Labels.Length != rows.Length) throw new InvalidInputException($"labels: {request.Labels.Length} rows, input_ids has {rows.Length}");
        long[] shape = [rows.Length, width];
        return (tensor(ids, shape), tensor(labels, shape), tensor(mask, shape));
    }
}
