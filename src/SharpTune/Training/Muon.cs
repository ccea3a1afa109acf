using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// Muon as torch.optim.Muon defines it (and axolotl's optimizer: muon uses it): for the 2-D weights of the hidden layers,
/// Nesterov momentum (μ = 0.95) whose update is orthogonalised by five quintic Newton–Schulz iterations
/// (a, b, c = 3.4445, −4.7750, 2.0315, in bfloat16, on the wide orientation, after dividing by the Frobenius norm) and
/// scaled by sqrt(max(1, rows/cols)), with decoupled weight decay; every other parameter (embeddings, lm_head, norms,
/// biases) takes the AdamW update with adam_beta1/2 and adam_epsilon, as the AdamW half of axolotl's Muon does.
/// </summary>
public sealed class Muon(IReadOnlyList<TrainableParameter> parameters, double weightDecay, double beta1, double beta2, double epsilon)
    : Optimizer(parameters, weightDecay)
{
    public const double Momentum = 0.95;
    public const int NewtonSchulzSteps = 5;
    private const double A = 3.4445, B = -4.7750, C = 2.0315, NormEpsilon = 1e-7;

    /// <summary>Whether a parameter takes the Muon update: a matrix that is not the token embedding or the output head.</summary>
    public static bool IsOrthogonalised(TrainableParameter p) =>
        p.Parameter.dim() == 2 && !p.Name.Contains("embed", StringComparison.Ordinal) && !p.Name.Contains("lm_head", StringComparison.Ordinal);

    public int OrthogonalisedCount => Parameters.Count(IsOrthogonalised);

    protected override void Update(TrainableParameter p, Tensor weight, Tensor grad, double lr)
    {
        if (!IsOrthogonalised(p))
        {
            AdamW.AdamStep(p, weight, grad, lr, State(p, "exp_avg", dtype: ScalarType.Float32), State(p, "exp_avg_sq", dtype: ScalarType.Float32),
                beta1, beta2, epsilon, WeightDecay, StepCount);
            return;
        }
        var buffer = State(p, "momentum_buffer", dtype: ScalarType.Float32);
        buffer.lerp_(grad, 1 - Momentum);
        var update = grad.lerp(buffer, Momentum);   // Nesterov: look ahead along the momentum
        var orthogonal = Orthogonalise(update);
        long rows = p.Parameter.shape[0], cols = p.Parameter.shape[1];
        double adjustedLr = lr * Math.Sqrt(Math.Max(1.0, (double)rows / cols));
        if (WeightDecay != 0) weight.mul_(1 - lr * WeightDecay);
        weight.sub_((orthogonal.to(ScalarType.Float32) * adjustedLr).to(weight.dtype));
    }

    /// <summary>Newton–Schulz approximation of U·Vᵀ for G = U·S·Vᵀ (the nearest semi-orthogonal matrix).</summary>
    public static Tensor Orthogonalise(Tensor g)
    {
        bool tall = g.shape[0] > g.shape[1];
        var x = g.to(ScalarType.BFloat16);
        if (tall) x = x.t();
        x = x / x.norm().clamp_min(NormEpsilon);
        for (int i = 0; i < NewtonSchulzSteps; i++)
        {
            var gram = x.matmul(x.t());
            var polynomial = gram * B + gram.matmul(gram) * C;
            x = x * A + polynomial.matmul(x);
        }
        return tall ? x.t() : x;
    }
}
