using SharpTune.Distributed;
using SharpTune.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// How a ZeRO-3 run executes the model: every parameter group (decoder layer, embedding, final norm, output
/// projection) runs inside <see cref="ShardedCall"/>, which gathers the group's parameters just before its forward and
/// frees them after, and in backward gathers them again, recomputes the group from its saved input (the same
/// recomputation gradient checkpointing does, so ZeRO-3 always checkpoints per group whether gradient_checkpointing is
/// set or not), back-propagates, sums the gradients onto their owners and frees the parameters once more. No autograd
/// graph ever outlives the window in which its parameters are present. Without gradients (evaluation, reference
/// scoring) a group is gathered, run and freed; while the shards are materialised it simply runs.
/// </summary>
public static class ShardedExecution
{
    public static void Enable(CausalLM model, ParameterShards shards)
    {
        model.Model.RunLayer = (layer, hidden, inputs) =>
        {
            if (inputs.Cache is not null || !NeedsBackward(layer, hidden))
                return Plain(shards, layer, () => layer.Forward(hidden, inputs));
            Tensor?[] extra = [inputs.Cos, inputs.Sin, inputs.FullMask, inputs.SlidingMask, inputs.SlidingCos, inputs.SlidingSin];
            var packed = ShardedCall.Run(shards, layer, (x, e) => GradientCheckpointing.Packed(layer, x, new AttentionInputs(e[0]!, e[1]!, e[2], e[3], null, e[4], e[5])), hidden, extra);
            return GradientCheckpointing.Unpacked(layer, packed, hidden);
        };
        model.Model.RunGroup = (group, compute, input, extra) =>
            NeedsBackward(group, input) ? ShardedCall.Run(shards, group, compute, input, extra) : Plain(shards, group, () => compute(input, extra));
    }

    /// <summary>Back to running the model as it is (after the shards are materialised for good, or in tests).</summary>
    public static void Disable(CausalLM model)
    {
        model.Model.RunLayer = (layer, hidden, inputs) => layer.Forward(hidden, inputs);
        model.Model.RunGroup = (_, compute, input, extra) => compute(input, extra);
    }

    private static bool NeedsBackward(nn.Module group, Tensor input) =>
        is_grad_enabled() && (input.requires_grad || group.parameters().Any(p => p.requires_grad));

    private static T Plain<T>(ParameterShards shards, nn.Module group, Func<T> run)
    {
        shards.Gather(group);
        try { return run(); }
        finally { shards.Release(group); }
    }

    private sealed record Saved(ParameterShards Shards, nn.Module Group, Func<Tensor, Tensor?[], Tensor> Compute, Tensor Input, bool InputNeedsGrad, Tensor?[] Extra, Tensor Rng);

    /// <summary>
    /// One group as an autograd node. Its tensor inputs are the group input and the group's trainable parameters: these
    /// make the node part of the graph even where the input carries no gradient (the embedding's token ids, the first
    /// layer under LoRA); their gradients reach them through the recomputation, so the node returns none for them.
    /// </summary>
    private sealed class ShardedCall : autograd.SingleTensorFunction<ShardedCall>
    {
        public override string Name => nameof(ShardedCall);

        public static Tensor Run(ParameterShards shards, nn.Module group, Func<Tensor, Tensor?[], Tensor> compute, Tensor input, Tensor?[] extra) =>
            apply([shards, group, compute, extra, input, .. group.parameters().Where(p => p.requires_grad)]);

        public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
        {
            var (shards, group, compute, extra, input) = ((ParameterShards)vars[0], (nn.Module)vars[1], (Func<Tensor, Tensor?[], Tensor>)vars[2], (Tensor?[])vars[3], (Tensor)vars[4]);
            ctx.save_data("count", vars.Length);
            // Own handles: the caller's dispose scope ends long before backward runs. The RNG state is replayed so that
            // dropout in the recomputation draws the forward's masks.
            ctx.save_data("saved", new Saved(shards, group, compute, input.detach().DetachFromDisposeScope(), input.requires_grad,
                extra.Select(e => e?.detach().DetachFromDisposeScope()).ToArray(), get_rng_state().DetachFromDisposeScope()));
            using var noGrad = no_grad();
            shards.Gather(group);
            try { return compute(input, extra); }
            finally { shards.Release(group); }
        }

        public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
        {
            var (shards, group, compute, input, inputNeedsGrad, extra, rng) = (Saved)ctx.get_data("saved");
            int count = (int)ctx.get_data("count");
            Tensor? inputGrad = null;
            // The recomputation's handles (activations, the gathered storages) die with this scope, group by group,
            // rather than all at the end of the micro-batch's backward.
            using (var scope = NewDisposeScope())
            {
                shards.Gather(group);
                var taken = shards.TakeGradients(group);
                using var current = get_rng_state();
                set_rng_state(rng);
                using (enable_grad())
                {
                    using var x = inputNeedsGrad ? input.detach().requires_grad_(true) : input.detach();
                    using var y = compute(x, extra);
                    y.backward([gradOutput]);
                    if (inputNeedsGrad) inputGrad = x.grad!.clone().MoveToOuterDisposeScope();
                }
                set_rng_state(current);
                // The reduction needs only the gradients: the gathered parameters are freed first, so that they and the
                // reduction's buffer are never held at the same time.
                shards.Release(group);
                shards.ReduceGradients(group, taken);
            }
            input.Dispose();
            foreach (var e in extra) e?.Dispose();
            rng.Dispose();
            var grads = new List<Tensor>(new Tensor[count]);
            grads[4] = inputGrad!;
            return grads;
        }
    }
}
