using static TorchSharp.torch;
using SharpTune.Tokenization;

namespace SharpTune.Modeling;

/// <summary>
/// transformers' causal-LM loss convention: logits at t predict labels at t+1, labels of -100 are skipped, and the
/// loss is the mean over every remaining token of the batch (not a mean of per-row means).
/// </summary>
public static class CausalLmLoss
{
    /// <summary>Sum of token NLL over the shifted, non-ignored labels, and how many tokens that is.</summary>
    public static (Tensor Sum, long Count) SumAndCount(Tensor logits, Tensor labels)
    {
        using var scope = NewDisposeScope();
        var (flatLogits, flatLabels) = Shift(logits, labels);
        var sum = nn.functional.cross_entropy(flatLogits, flatLabels, ignore_index: TokenLabels.IgnoreIndex, reduction: nn.Reduction.Sum);
        long count = flatLabels.ne(TokenLabels.IgnoreIndex).sum().item<long>();
        return (sum.MoveToOuterDisposeScope(), count);
    }

    public static Tensor Mean(Tensor logits, Tensor labels)
    {
        var (sum, count) = SumAndCount(logits, labels);
        using (sum) return sum / Math.Max(count, 1);
    }

    /// <summary>log p(label) for each shifted position (B, T-1), 0 where the label is ignored; float64 when asked.</summary>
    public static Tensor TokenLogProbs(Tensor logits, Tensor labels, ScalarType dtype = ScalarType.Float32)
    {
        using var scope = NewDisposeScope();
        var shiftedLogits = logits[.., ..^1, ..].to(dtype);
        var shiftedLabels = labels[.., 1..];
        var valid = shiftedLabels.ne(TokenLabels.IgnoreIndex);
        var safeLabels = shiftedLabels.masked_fill(valid.logical_not(), 0);
        var logProbs = shiftedLogits.log_softmax(-1).gather(-1, safeLabels.unsqueeze(-1)).squeeze(-1);
        return logProbs.masked_fill(valid.logical_not(), 0).MoveToOuterDisposeScope();
    }

    private static (Tensor Logits, Tensor Labels) Shift(Tensor logits, Tensor labels)
    {
        long vocab = logits.shape[^1];
        return (logits[.., ..^1, ..].reshape(-1, vocab), labels[.., 1..].reshape(-1));
    }
}
