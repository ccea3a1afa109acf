using SharpTune.Modeling;
using static TorchSharp.torch;
using SharpTune.Tokenization;

namespace SharpTune.Training;

/// <summary>
/// Cross-entropy summed over labelled tokens without ever holding the [tokens × vocab] float32 logits: the forward walks
/// the tokens in chunks (Llama 3's 128k vocabulary makes the full logits of a 4k-token batch 2 GB). When the float32
/// gradient of all the logits fits in <see cref="KeptGradientBytes"/>, the forward writes it chunk by chunk while it has
/// each chunk's logits, and the backward only multiplies it out; otherwise the backward recomputes each chunk's logits
/// (one more vocabulary product, ~14% of a 56M model's training FLOPs). Same loss and gradients as the plain path.
/// </summary>
public static class ChunkedCrossEntropy
{
    /// <summary>Tokens per chunk: one chunk's float32 logits and softmax stay a few tens of MiB at a 32k–150k vocabulary.</summary>
    public const int DefaultChunkTokens = 256;

    /// <summary>The largest [tokens × vocab] float32 logit gradient the forward keeps for the backward.</summary>
    public const long KeptGradientBytes = 256L << 20;

    /// <summary>Whether a loss over <paramref name="rows"/> labelled tokens keeps its logit gradient instead of recomputing it.</summary>
    public static bool KeepsGradient(long rows, long vocab, long limitBytes = KeptGradientBytes) => rows * vocab * sizeof(float) <= limitBytes;

    /// <param name="hidden">(B, T, H) final hidden states.</param>
    /// <param name="labels">(B, T) with -100 for untrained positions; shifted here (hidden at t predicts label t+1).</param>
    /// <param name="keptGradientBytes">the limit under which the logit gradient is kept (0 always recomputes it).</param>
    public static Tensor Sum(CausalLM model, Tensor hidden, Tensor labels, int chunkTokens, long keptGradientBytes = KeptGradientBytes)
    {
        using var scope = NewDisposeScope();
        long h = hidden.shape[^1];
        var shiftedLabels = labels[.., 1..].reshape(-1);
        var selected = shiftedLabels.ne(TokenLabels.IgnoreIndex).nonzero().squeeze(1);
        var rows = hidden[.., ..^1, ..].reshape(-1, h).index_select(0, selected);        // (N, H)
        var targets = shiftedLabels.index_select(0, selected);                            // (N)
        double softcap = model.Config.FinalLogitSoftcapping ?? 0;
        var loss = model.Model.RunGroup(model.OutputModule, (r, extra) =>
        {
            // Only a pass that will be differentiated keeps the gradient (evaluation runs under no_grad).
            bool keep = is_grad_enabled() && (r.requires_grad || model.OutputWeight.requires_grad)
                        && KeepsGradient(r.shape[0], model.OutputWeight.shape[0], keptGradientBytes);
            return ChunkedLoss.Apply(r, model.OutputWeight, extra[0]!, chunkTokens, softcap, keep);
        }, rows, targets);
        return loss.MoveToOuterDisposeScope();
    }

    private sealed class ChunkedLoss : autograd.SingleTensorFunction<ChunkedLoss>
    {
        public override string Name => nameof(ChunkedLoss);

        public static Tensor Apply(Tensor rows, Tensor weight, Tensor targets, int chunk, double softcap, bool keepGradient) =>
            apply(rows, weight, targets, chunk, softcap, keepGradient);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var rows = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            var targets = (Tensor)vars[2];
            int chunk = (int)vars[3];
            double softcap = (double)vars[4];
            bool keep = (bool)vars[5];
            ctx.save_data("chunk", chunk);
            ctx.save_data("softcap", softcap);
            ctx.save_data("kept", keep);
            using var noGrad = no_grad();
            var total = zeros(1, ScalarType.Float32, rows.device);
            // d(summed loss)/d(raw logits) of every row, written chunk by chunk while the forward has each chunk's logits.
            using var kept = keep ? empty(rows.shape[0], weight.shape[0], ScalarType.Float32, rows.device) : null;
            for (long start = 0; start < rows.shape[0]; start += chunk)
            {
                using var scope = NewDisposeScope();
                long end = Math.Min(start + chunk, rows.shape[0]);
                var (logits, capped) = Logits(rows.narrow(0, start, end - start), weight, softcap);
                var target = targets.narrow(0, start, end - start).unsqueeze(1);
                var picked = logits.gather(1, target).squeeze(1);
                total.add_((logits.logsumexp(1) - picked).sum());
                kept?.narrow(0, start, end - start).copy_(LogitGradient(logits, capped, target));
            }
            ctx.save_for_backward(kept is null ? [rows, weight, targets] : [rows, weight, targets, kept]);
            return total.squeeze(0);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            Tensor rows = saved[0], weight = saved[1], targets = saved[2];
            Tensor? kept = (bool)ctx.get_data("kept") ? saved[3] : null;
            int chunk = (int)ctx.get_data("chunk");
            double softcap = (double)ctx.get_data("softcap");
            using var noGrad = no_grad();
            // Kept as a device scalar: reading it back would stall the GPU once per backward.
            using var scale = gradOutput.to(ScalarType.Float32).reshape(1, 1);
            var rowGrad = zeros_like(rows);
            var weightGrad = weight.requires_grad ? zeros(weight.shape, ScalarType.Float32, weight.device) : null;
            for (long start = 0; start < rows.shape[0]; start += chunk)
            {
                using var scope = NewDisposeScope();
                long length = Math.Min(chunk, rows.shape[0] - start);
                var chunkRows = rows.narrow(0, start, length);
                Tensor dLogits;
                // The kept gradient is read, never scaled in place (a second backward through a retained graph reads it again).
                if (kept is not null) dLogits = kept.narrow(0, start, length) * scale;
                else
                {
                    var (logits, capped) = Logits(chunkRows, weight, softcap);
                    dLogits = LogitGradient(logits, capped, targets.narrow(0, start, length).unsqueeze(1)).mul_(scale);
                }
                rowGrad.narrow(0, start, length).copy_(dLogits.to(rows.dtype).matmul(weight));
                weightGrad?.addmm_(dLogits.t(), chunkRows.to(ScalarType.Float32));
            }
            return [rowGrad, weightGrad?.to(weight.dtype)!, null!, null!, null!, null!];
        }

        /// <summary>One chunk's float32 logits (soft-capped when the model caps them), and tanh(raw / cap) when it does.</summary>
        private static (Tensor Logits, Tensor? Capped) Logits(Tensor rows, Tensor weight, double softcap)
        {
            var raw = nn.functional.linear(rows, weight).to(ScalarType.Float32);
            if (softcap <= 0) return (raw, null);
            var capped = (raw / softcap).tanh();
            return (capped * softcap, capped);
        }

        /// <summary>d(summed loss)/d(raw logits) of one chunk: softmax − one-hot, times the soft-cap's slope 1 − tanh².</summary>
        private static Tensor LogitGradient(Tensor logits, Tensor? capped, Tensor target)
        {
            var gradient = logits.softmax(1);
            gradient.scatter_add_(1, target, full(target.shape[0], 1, -1f, ScalarType.Float32, logits.device));
            if (capped is not null) gradient.mul_(1 - capped.pow(2));
            return gradient;
        }
    }
}
