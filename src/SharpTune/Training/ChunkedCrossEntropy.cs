using SharpTune.Modeling;
using static TorchSharp.torch;
using SharpTune.Tokenization;

namespace SharpTune.Training;

/// <summary>
/// Cross-entropy summed over labelled tokens without ever holding the [tokens × vocab] float32 logits: forward and
/// backward both walk the tokens in chunks and recompute each chunk's logits (Llama 3's 128k vocabulary makes the full
/// logits of a 4k-token batch 2 GB). Same loss and gradients as the plain path.
/// </summary>
public static class ChunkedCrossEntropy
{
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
        var loss = model.Model.RunGroup(model.OutputModule, (r, extra) => ChunkedLoss.Apply(r, model.OutputWeight, extra[0]!, chunkTokens, softcap), rows, targets);
        return loss.MoveToOuterDisposeScope();
    }

    private sealed class ChunkedLoss : autograd.SingleTensorFunction<ChunkedLoss>
    {
        public override string Name => nameof(ChunkedLoss);

        public static Tensor Apply(Tensor rows, Tensor weight, Tensor targets, int chunk, double softcap) =>
            apply(rows, weight, targets, chunk, softcap);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var rows = (Tensor)vars[0];
            var weight = (Tensor)vars[1];
            var targets = (Tensor)vars[2];
            int chunk = (int)vars[3];
            double softcap = (double)vars[4];
            ctx.save_for_backward([rows, weight, targets]);
            ctx.save_data("chunk", chunk);
            ctx.save_data("softcap", softcap);
            using var noGrad = no_grad();
            var total = zeros(1, ScalarType.Float32, rows.device);
            for (long start = 0; start < rows.shape[0]; start += chunk)
            {
                using var scope = NewDisposeScope();
                long end = Math.Min(start + chunk, rows.shape[0]);
                var logits = Logits(rows.narrow(0, start, end - start), weight, softcap);
                var target = targets.narrow(0, start, end - start);
                var picked = logits.gather(1, target.unsqueeze(1)).squeeze(1);
                total.add_((logits.logsumexp(1) - picked).sum());
            }
            return total.squeeze(0);
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
            for (long start = 0; start < rows.shape[0]; start += chunk)
            {
                using var scope = NewDisposeScope();
                long end = Math.Min(start + chunk, rows.shape[0]);
                var raw = nn.functional.linear(rows.narrow(0, start, end - start), weight).to(ScalarType.Float32);
                var logits = softcap > 0 ? (raw / softcap).tanh() * softcap : raw;
                var dLogits = logits.softmax(1);
                dLogits.scatter_add_(1, targets.narrow(0, start, end - start).unsqueeze(1), full(end - start, 1, -1f, ScalarType.Float32, rows.device));
                dLogits.mul_(scale);
                if (softcap > 0) dLogits.mul_(1 - (raw / softcap).tanh().pow(2));   // d tanh-softcap / d raw
                rowGrad.narrow(0, start, end - start).copy_(dLogits.to(rows.dtype).matmul(weight));
                if (weightGrad is not null) weightGrad.add_(dLogits.t().matmul(rows.narrow(0, start, end - start).to(ScalarType.Float32)));
            }
            return [rowGrad, weightGrad?.to(weight.dtype)!, null!, null!, null!];
        }

        private static Tensor Logits(Tensor rows, Tensor weight, double softcap)
        {
            var logits = nn.functional.linear(rows, weight).to(ScalarType.Float32);
            return softcap > 0 ? (logits / softcap).tanh() * softcap : logits;
        }
    }
}
