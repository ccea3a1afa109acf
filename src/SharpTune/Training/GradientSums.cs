using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// A step's gradients summed over its micro-batches (and, under data parallel, its ranks) in float64, then rounded once
/// to the parameters' dtype. Used for adapter runs: float32 sums taken in different orders — ((m0+m1)+m2)+m3 in one
/// process, (m0+m2)+(m1+m3) over 2 ranks — differ in their last bits, and AdamW, which divides each gradient by its
/// own running magnitude, turns that into visible differences in the zero-initialised lora_B (1.5–2.8e-6 after 6
/// steps). In float64 the sum of a few float32 gradients is exact whatever the order, so every way of sharing the
/// micro-batches gives the same bits. Adapters are small, so the float64 copy costs little; a full fine-tune keeps
/// plain float32 accumulation, whose order effects AdamW does not amplify there.
/// </summary>
public sealed class GradientSums(IReadOnlyList<TrainableParameter> trainable) : IDisposable
{
    private readonly Tensor?[] sums = new Tensor?[trainable.Count];

    /// <summary>After a micro-batch's backward: its gradients added to the sums and released, so the next backward writes fresh ones.</summary>
    public void AddMicroBatch()
    {
        using var noGrad = no_grad();
        for (int i = 0; i < sums.Length; i++)
        {
            var p = trainable[i].Parameter;
            if (p.grad is not { } g) continue;
            if (sums[i] is { } sum) sum.add_(g);
            else sums[i] = g.to(ScalarType.Float64, copy: true).DetachFromDisposeScope();
            p.grad = null;
        }
    }

    /// <summary>The float64 sums in the trainable parameters' order (null where a parameter had no gradient), for a reduction over ranks.</summary>
    public IReadOnlyList<Tensor?> Sums => sums;

    /// <summary>One process: the sums rounded once into the parameters' gradients.</summary>
    public void ToGradients()
    {
        using var noGrad = no_grad();
        for (int i = 0; i < sums.Length; i++)
            if (sums[i] is { } sum) trainable[i].Parameter.grad = sum.to(trainable[i].Parameter.dtype).DetachFromDisposeScope();
        Clear();
    }

    /// <summary>Frees the sums (after the reduction has set the gradients).</summary>
    public void Clear()
    {
        for (int i = 0; i < sums.Length; i++)
        {
            sums[i]?.Dispose();
            sums[i] = null;
        }
    }

    public void Dispose() => Clear();
}
