using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// Runs each decoder layer without keeping its activations and recomputes it during backward (reentrant
/// checkpointing): activation memory drops from all layers' intermediates to one hidden state per layer.
/// The RNG state is replayed so dropout masks in the recomputation equal those of the forward.
/// A mixture-of-experts layer's router logits leave the checkpoint too (packed after the hidden state in one flat
/// tensor), so the load-balancing loss still reaches the router and the layers below.
/// </summary>
public static class GradientCheckpointing
{
    /// <param name="offload">
    /// gradient_checkpointing: offload: each layer's saved input waits for backward in pinned host memory instead of on the
    /// device (copied back before recomputation), so device memory holds no per-layer activations at all.
    /// </param>
    public static void Enable(CausalLM model, bool offload = false) =>
        model.Model.RunLayer = (layer, hidden, inputs) =>
            layer.training && hidden.requires_grad
                ? Checkpointed(layer, hidden, inputs, offload)
                : layer.Forward(hidden, inputs);

    public static void Disable(CausalLM model) =>
        model.Model.RunLayer = (layer, hidden, inputs) => layer.Forward(hidden, inputs);

    private static (Tensor Hidden, Tensor? RouterLogits) Checkpointed(DecoderLayer layer, Tensor hidden, AttentionInputs inputs, bool offload) =>
        Unpacked(layer, CheckpointedLayer.Run(layer, hidden, inputs, offload), hidden);

    /// <summary>The output and router logits back out of <see cref="Packed"/>'s one tensor.</summary>
    internal static (Tensor Hidden, Tensor? RouterLogits) Unpacked(DecoderLayer layer, Tensor packed, Tensor hidden)
    {
        if (!layer.IsSparse) return (packed, null);
        long size = hidden.numel();
        var output = packed.narrow(0, 0, size).view(hidden.shape);
        var logits = packed.narrow(0, size, packed.shape[0] - size).view(hidden.shape[0] * hidden.shape[1], -1);   // (B·T, E)
        return (output, logits);
    }

    /// <summary>Dense layers: the output itself; sparse layers: cat(output.flatten(), router_logits.flatten()).</summary>
    internal static Tensor Packed(DecoderLayer layer, Tensor hidden, AttentionInputs inputs)
    {
        var (output, logits) = layer.Forward(hidden, inputs);
        if (logits is null) return output;
        using (output)
        using (logits)
            return cat([output.reshape(-1), logits.reshape(-1)], 0);
    }

    private sealed record Saved(DecoderLayer Layer, Tensor Hidden, AttentionInputs Inputs, Tensor Rng, Device Device);

    private sealed class CheckpointedLayer : autograd.SingleTensorFunction<CheckpointedLayer>
    {
        public override string Name => nameof(CheckpointedLayer);

        public static Tensor Run(DecoderLayer layer, Tensor hidden, AttentionInputs inputs, bool offload) =>
            apply(layer, hidden, inputs, offload);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var layer = (DecoderLayer)vars[0];
            var hidden = (Tensor)vars[1];
            var inputs = (AttentionInputs)vars[2];
            bool offload = (bool)vars[3];
            var kept = offload ? hidden.detach().to(CPU).pin_memory() : hidden.detach();
            // Keep our own handles: the caller's dispose scope ends long before backward runs.
            // Tensors ride in a plain holder: save_for_backward would keep the autograd graph we are avoiding.
            ctx.save_data("saved", new Saved(layer, kept.DetachFromDisposeScope(), new AttentionInputs(
                inputs.Cos.detach().DetachFromDisposeScope(), inputs.Sin.detach().DetachFromDisposeScope(),
                inputs.FullMask?.detach().DetachFromDisposeScope(), inputs.SlidingMask?.detach().DetachFromDisposeScope(), null,
                inputs.SlidingCos?.detach().DetachFromDisposeScope(), inputs.SlidingSin?.detach().DetachFromDisposeScope()),
                get_rng_state().DetachFromDisposeScope(), hidden.device));
            using var noGrad = no_grad();
            return Packed(layer, hidden, inputs);
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var (layer, kept, inputs, rng, device) = (Saved)ctx.get_data("saved");
            var hidden = kept.device == device ? kept : kept.to(device, non_blocking: true);
            using var current = get_rng_state();
            set_rng_state(rng);
            Tensor inputGrad;
            using (enable_grad())
            {
                using var x = hidden.detach().requires_grad_(true);
                using var y = Packed(layer, x, inputs);
                y.backward([gradOutput]);
                inputGrad = x.grad!.detach().clone();
            }
            set_rng_state(current);
            hidden.Dispose();
            if (!ReferenceEquals(kept, hidden)) kept.Dispose();
            rng.Dispose();
            inputs.Cos.Dispose();
            inputs.Sin.Dispose();
            inputs.FullMask?.Dispose();
            inputs.SlidingMask?.Dispose();
            inputs.SlidingCos?.Dispose();
            inputs.SlidingSin?.Dispose();
            return [null!, inputGrad, null!, null!];
        }
    }
}
