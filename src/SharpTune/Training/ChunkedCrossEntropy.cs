using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// Cross-entropy summed over labelled tokens without ever holding the [tokens × vocab] logits at once: the forward
/// walks the tokens in chunks (Llama 3's 128k vocabulary makes the full float32 logits of a 4k-token batch 2 GB).
/// When the gradient of every chunk's logits (softmax − one-hot, float32) fits in <see cref="DefaultKeptGradientBytes"/>,
/// the forward keeps it, and the backward is two matrix products; above that, the backward recomputes each chunk's
/// logits instead (one more vocabulary-sized product per token: ≈ 14% of a 56M model's training FLOPs). Both give the
/// same loss and gradients as the plain path.
/// </summary>
public static class ChunkedCrossEntropy
{
    /// <summary>Tokens per chunk: 256 rows of a 32k vocabulary are 32 MiB of float32 logits per temporary.</summary>
    public const int DefaultChunkTokens = 256;
    /// <summary>The largest kept logit gradient; a 2 × 512-token batch of a 32k vocabulary needs 125 MiB.</summary>
    public const long DefaultKeptGradientBytes = 256L << 20;

    /// <param name="hidden">(B, T, H) final hidden states.</param>
    /// <param name="labels">(B, T) with -100 for untrained positions; shifted here (hidden at t predicts label t+1).</param>
    public static Tensor Sum(CausalLM model, Tensor hidden, Tensor labels, int chunkTokens = DefaultChunkTokens, long keptGradientBytes = DefaultKeptGradientBytes)
    {
        using var scope = NewDisposeScope();
        long h = hidden.shape[^1];
        var shiftedLabels = labels[.., 1..].reshape(-1);
        var selected = shiftedLabels.ne(CausalLmLoss.IgnoreIndex).nonzero().squeeze(1);
        var rows = hidden[.., ..^1, ..].reshape(-1, h).index_select(0, selected);        // (N, H)
        var targets = shiftedLabels.index_select(0, selected);                            // (N)
        var loss = ChunkedLoss.Apply(rows, model.OutputWeight, targets, chunkTokens, model.Config.FinalLogitSoftcapping ?? 0, keptGradientBytes);
        return loss.MoveToOuterDisposeScope();
    }

    private sealed class ChunkedLoss : autograd.SingleTensorFunction<ChunkedLoss>
    {
        public override string Name => nameof(ChunkedLoss);

        public static Tensor Apply(Tensor rows, Tensor weight, Tensor targets, int chunk, double softcap, long keptGradientBytes) =>
            apply(rows, weight, targets, chunk, softcap, keptGradientBytes);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var rows = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            var targets = (Tensor)vars[2];
            int chunk = (int)vars[3];
            double softcap = (double)vars[4];
            long keptGradientBytes = (long)vars[5];
            long n = rows.shape[0], vocab = weight.shape[0];
            // Soft-capped logits (Gemma 2) take the recomputing path: their gradient also needs the raw logits.
            bool keep = (rows.requires_grad || weight.requires_grad) && softcap == 0 && n * vocab * sizeof(float) <= keptGradientBytes;
            using var noGrad = no_grad();
            var logitGradient = keep ? empty(n, vocab, ScalarType.Float32, rows.device) : null;
            var total = zeros(1, ScalarType.Float32, rows.device);
            for (long start = 0; start < n; start += chunk)
            {
                using var scope = NewDisposeScope();
                long end = Math.Min(start + chunk, n);
                var logits = Logits(rows.narrow(0, start, end - start), weight, softcap);
                var target = targets.narrow(0, start, end - start);
                var picked = logits.gather(1, target.unsqueeze(1)).squeeze(1);
                total.add_((logits.logsumexp(1) - picked).sum());
                if (logitGradient is not null) LogitGradient(logits, target, logitGradient.narrow(0, start, end - start));
            }
            ctx.save_for_backward(logitGradient is null ? [rows, weight, targets] : [rows, weight, targets, logitGradient]);
            ctx.save_data("chunk", chunk);
            ctx.save_data("softcap", softcap);
            return total.squeeze(0);
        }

        /// <summary>d(Σ lse − picked)/d logits = softmax − one-hot, written into <paramref name="into"/>.</summary>
        private static void LogitGradient(Tensor logits, Tensor target, Tensor into)
        {
            into.copy_(logits.softmax(1));
            into.scatter_add_(1, target.unsqueeze(1), full(target.shape[0], 1, -1f, ScalarType.Float32, logits.device));
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            Tensor rows = saved[0], weight = saved[1], targets = saved[2];
            int chunk = (int)ctx.get_data("chunk");
            double softcap = (double)ctx.get_data("softcap");
            bool needWeightGrad = weight.requires_grad;
            var rowGrad = zeros_like(rows);
            var weightGrad = needWeightGrad ? zeros(weight.shape, ScalarType.Float32, weight.device) : null;
            using var noGrad = no_grad();
            // Kept as a device scalar: reading it back would stall the GPU once per backward.
            using var scale = gradOutput.to(ScalarType.Float32).reshape(1, 1);
            var kept = saved.Count > 3 ? saved[3] : null;
            for (long start = 0; start < rows.shape[0]; start += chunk)
            {
                using var scope = NewDisposeScope();
                long end = Math.Min(start + chunk, rows.shape[0]);
                Tensor dLogits;
                if (kept is not null) dLogits = kept.narrow(0, start, end - start) * scale;
                else
                {
                    var raw = nn.functional.linear(rows.narrow(0, start, end - start), weight).to(ScalarType.Float32);
                    var logits = softcap > 0 ? (raw / softcap).tanh() * softcap : raw;
                    dLogits = empty_like(logits);
                    LogitGradient(logits, targets.narrow(0, start, end - start), dLogits);
                    dLogits.mul_(scale);
                    if (softcap > 0) dLogits.mul_(1 - (raw / softcap).tanh().pow(2));   // d tanh-softcap / d raw
                }
                rowGrad.narrow(0, start, end - start).copy_(dLogits.to(rows.dtype).matmul(weight));
                if (weightGrad is not null) weightGrad.addmm_(dLogits.t(), rows.narrow(0, start, end - start).to(ScalarType.Float32), beta: 1, alpha: 1);
            }
            return [rowGrad, weightGrad?.to(weight.dtype)!, null!, null!, null!, null!];
        }

        private static Tensor Logits(Tensor rows, Tensor weight, double softcap)
        {
            var logits = nn.functional.linear(rows, weight).to(ScalarType.Float32);
            return softcap > 0 ? (logits / softcap).tanh() * softcap : logits;
        }
    }
}
