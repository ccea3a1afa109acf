using SharpTune.Modeling;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Peft;

/// <summary>
/// LoRA on one linear layer: y = base(x) + B(A(dropout(x))) · scaling, A (r × in), B (out × r), both float32.
/// With DoRA (PEFT's formulation) the direction W + s·BA is renormalised per output row and scaled by a learned
/// magnitude m: y = base(x) + (m/‖W + s·BA‖ − 1) · x Wᵀ + (m/‖W + s·BA‖) · s · B A x, the norm detached.
/// </summary>
public sealed class LoraAdapter : ILinearAdapter
{
    private readonly LinearLayer loraA, loraB;
    private readonly Parameter? magnitude;
    private readonly double dropout;

    public LoraAdapter(LinearLayer layer, int rank, double scaling, double dropout, bool useDora)
    {
        Rank = rank;
        Scaling = scaling;
        this.dropout = dropout;
        loraA = new LinearLayer(layer.InFeatures, rank, false, ScalarType.Float32);
        loraB = new LinearLayer(rank, layer.OutFeatures, false, ScalarType.Float32);
        using (no_grad())
        {
            // PEFT's default init: A ~ kaiming_uniform(a=√5) = U(−1/√in, 1/√in), B = 0, so training starts at the base model.
            double bound = 1.0 / Math.Sqrt(layer.InFeatures);
            loraA.Weight.uniform_(-bound, bound);
            loraB.Weight.zero_();
        }
        if (useDora)
        {
            using var noGrad = no_grad();
            magnitude = new Parameter(WeightNorm(layer).detach().clone());
        }
    }

    public int Rank { get; }
    public double Scaling { get; }
    public Parameter A => loraA.Weight;
    public Parameter B => loraB.Weight;
    public Parameter? Magnitude => magnitude;

    public IEnumerable<(string Name, nn.Module Module)> Modules => [("lora_A", loraA), ("lora_B", loraB)];

    public IEnumerable<(string Name, Parameter Parameter)> Parameters =>
        magnitude is null ? [] : [("lora_magnitude_vector", magnitude)];

    public Tensor Forward(Tensor input, Tensor baseOutput, LinearLayer layer)
    {
        using var scope = NewDisposeScope();
        var x = input.to(ScalarType.Float32);
        if (dropout > 0 && loraA.training) x = nn.functional.dropout(x, dropout, training: true);
        if (magnitude is null && baseOutput.dtype == ScalarType.Float32) return Fused(baseOutput, loraA.call(x)).MoveToOuterDisposeScope();
        var lora = loraB.call(loraA.call(x)) * Scaling;
        if (magnitude is null) return (baseOutput + lora.to(baseOutput.dtype)).MoveToOuterDisposeScope();
        var normScale = (magnitude / WeightNorm(layer).detach()).view(1, -1);
        var direction = nn.functional.linear(x, layer.DenseWeight(ScalarType.Float32));
        var dora = (normScale - 1) * direction + normScale * lora;
        return (baseOutput + dora.to(baseOutput.dtype)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// base + s · h Bᵀ as one GEMM accumulating onto the base output in place (h = A x, float32 throughout): the product,
    /// its scaled copy and their sum are never materialised, which saves three output-sized tensors per projection in
    /// the forward and one in the backward, where most of LoRA's step time outside the GEMMs went. The base output's
    /// own backward does not read it, so writing over it is safe.
    /// </summary>
    private Tensor Fused(Tensor baseOutput, Tensor h) => baseOutput.addmm_(h, loraB.Weight.t(), beta: 1, alpha: (float)Scaling);

    /// <summary>‖W + s·BA‖ per output row, in float32.</summary>
    public Tensor WeightNorm(LinearLayer layer)
    {
        using var scope = NewDisposeScope();
        return LoraMerge.Combined(layer.DenseWeight(ScalarType.Float32), loraA.Weight, loraB.Weight, Scaling).norm(1).MoveToOuterDisposeScope();
    }

    /// <summary>The merged weight W' = W + s·BA (LoRA) or m · (W + s·BA)/‖W + s·BA‖ (DoRA), float32.</summary>
    public Tensor MergedWeight(LinearLayer layer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return LoraMerge.Merge(layer.DenseWeight(ScalarType.Float32), loraA.Weight, loraB.Weight, Scaling, magnitude).MoveToOuterDisposeScope();
    }
}
