using SharpTune.Modeling;
using static TorchSharp.torch;
using SharpTune.Tokenization;

namespace SharpTune.Training;

/// <summary>
/// Cross-entropy summed over labelled tokens without ever holding the [tokens × vocab] float32 logits: the forward walks
/// the tokens in chunks (Llama 3's 128k vocabulary makes the full logits of a 4k-token batch 2 GB). When the pass will
/// be differentiated, the forward also turns each chunk's logits into their gradient (softmax − one-hot, written over
/// the logits) and multiplies it out at once into the rows' gradient [tokens × hidden] and, for a trained output matrix,
/// its float32 gradient [vocab × hidden]; the backward only scales these by the incoming gradient. Nothing of vocabulary
/// width outlives a chunk, and no vocabulary product is recomputed. Same loss and gradients as the plain path.
/// </summary>
public static class ChunkedCrossEntropy
{
    /// <summary>Tokens per chunk: one chunk's float32 logits and log-sum-exp temporary stay a few tens of MiB at a 32k–150k vocabulary.</summary>
    public const int DefaultChunkTokens = 256;

    /// <param name="hidden">(B, T, H) final hidden states.</param>
    /// <param name="labels">(B, T) with -100 for untrained positions; shifted here (hidden at t predicts label t+1).</param>
    public static Tensor Sum(CausalLM model, Tensor hidden, Tensor labels, int chunkTokens)
    {
        using var scope = NewDisposeScope();
        long h = hidden.shape[^1];
        var shiftedLabels = labels[.., 1..].reshape(-1);
        var selected = shiftedLabels.ne(TokenLabels.IgnoreIndex).nonzero().squeeze(1);
        var rows = hidden[.., ..^1, ..].reshape(-1, h).index_select(0, selected);        // (N, H)
        var targets = shiftedLabels.index_select(0, selected);                            // (N)
        double softcap = model.Config.FinalLogitSoftcapping ?? 0;
        // Only a pass that will be differentiated computes gradients (evaluation runs under no_grad); the function's own
        // forward always runs without gradients, so this is decided here.
        var loss = model.Model.RunGroup(model.OutputModule, (r, extra) => ChunkedLoss.Apply(r, model.OutputWeight, extra[0]!, chunkTokens, softcap, is_grad_enabled()), rows, targets);
        return loss.MoveToOuterDisposeScope();
    }

    private sealed class ChunkedLoss : autograd.SingleTensorFunction<ChunkedLoss>
    {
        public override string Name => nameof(ChunkedLoss);

        public static Tensor Apply(Tensor rows, Tensor weight, Tensor targets, int chunk, double softcap, bool differentiated) =>
            apply(rows, weight, targets, chunk, softcap, differentiated);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var rows = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            var targets = (Tensor)vars[2];
            int chunk = (int)vars[3];
            double softcap = (double)vars[4];
            bool differentiated = (bool)vars[5];
            bool rowsTrain = differentiated && rows.requires_grad, weightTrains = differentiated && weight.requires_grad;
            using var noGrad = no_grad();
            var total = zeros(1, ScalarType.Float32, rows.device);
            // d(summed loss)/d(rows) and d(summed loss)/d(weight), unscaled, filled chunk by chunk.
            var rowGrad = rowsTrain ? empty_like(rows) : null;
            var weightGrad = weightTrains ? zeros(weight.shape, ScalarType.Float32, weight.device) : null;
            for (long start = 0; start < rows.shape[0]; start += chunk)
            {
                using var scope = NewDisposeScope();
                long length = Math.Min(chunk, rows.shape[0] - start);
                var chunkRows = rows.narrow(0, start, length);
                var (logits, capped) = Logits(chunkRows, weight, softcap);
                var target = targets.narrow(0, start, length).unsqueeze(1);
                var picked = logits.gather(1, target).squeeze(1);
                // log-sum-exp as max + log Σ exp(logits − max), with exp(logits − max) written over the logits: the
                // gradient's softmax is then that divided by its sum, with no second exponential and no chunk-sized temporary.
                var max = logits.amax([1], keepdim: true);
                var exponentials = logits.sub_(max).exp_();
                var sum = exponentials.sum([1], keepdim: true);
                total.add_((sum.log().add_(max).squeeze(1) - picked).sum());
                if (rowGrad is null && weightGrad is null) continue;
                var dLogits = LogitGradient(exponentials, sum, capped, target);
                rowGrad?.narrow(0, start, length).addmm_(dLogits.to(rows.dtype), weight, beta: 0, alpha: 1);
                weightGrad?.addmm_(dLogits.t(), chunkRows.to(ScalarType.Float32));
            }
            ctx.save_data("trained", (rowGrad is not null, weightGrad is not null));
            ctx.save_data("weightDtype", weight.dtype);
            ctx.save_for_backward([.. new[] { rowGrad, weightGrad }.OfType<Tensor>()]);
            return total.squeeze(0);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var saved = ctx.get_saved_variables();
            var (rowsTrain, weightTrains) = ((bool, bool))ctx.get_data("trained");
            Tensor? rowGrad = rowsTrain ? saved[0] : null, weightGrad = weightTrains ? saved[^1] : null;
            var weightDtype = (ScalarType)ctx.get_data("weightDtype");
            using var noGrad = no_grad();
            // Kept as a device scalar: reading it back would stall the GPU once per backward. The saved gradients are
            // read, never scaled in place (a second backward through a retained graph reads them again).
            using var scale = gradOutput.to(ScalarType.Float32);
            var rows = rowGrad is null ? null : (rowGrad.to(ScalarType.Float32) * scale).to(rowGrad.dtype);
            var weight = weightGrad is null ? null : (weightGrad * scale).to(weightDtype);
            return [rows!, weight!, null!, null!, null!, null!];
        }

        /// <summary>One chunk's float32 logits (soft-capped when the model caps them), and tanh(raw / cap) when it does.</summary>
        private static (Tensor Logits, Tensor? Capped) Logits(Tensor rows, Tensor weight, double softcap)
        {
            var raw = nn.functional.linear(rows, weight).to(ScalarType.Float32);
            if (softcap <= 0) return (raw, null);
            var capped = (raw / softcap).tanh();
            return (capped * softcap, capped);
        }

        /// <summary>
        /// d(summed loss)/d(raw logits) of one chunk, written over exp(logits − max): softmax − one-hot, times the
        /// soft-cap's slope 1 − tanh².
        /// </summary>
        private static Tensor LogitGradient(Tensor exponentials, Tensor sum, Tensor? capped, Tensor target)
        {
            var gradient = exponentials.div_(sum);
            gradient.scatter_add_(1, target, full(target.shape[0], 1, -1f, ScalarType.Float32, exponentials.device));
            if (capped is not null) gradient.mul_(1 - capped.pow(2));
            return gradient;
        }
    }
}
