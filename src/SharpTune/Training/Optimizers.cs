using SharpTune.Config;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>A trainable parameter with its checkpoint name and whether weight decay applies (not to biases and norms).</summary>
public sealed record TrainableParameter(string Name, Parameter Parameter, bool Decay)
{
    public static bool DecayApplies(string name) =>
        !(name.EndsWith(".bias", StringComparison.Ordinal) || name.Contains("norm", StringComparison.Ordinal) || name.EndsWith("lora_magnitude_vector", StringComparison.Ordinal));
}

/// <summary>
/// An optimizer whose whole state is named tensors (float32, except for bf16: full) saved to optimizer.safetensors plus
/// a step count, so a resumed run continues bit-for-bit. Parameters held in bf16/fp16 are updated through a float32 master copy (state
/// slot "master"), which is then rounded into the parameter: small updates accumulate instead of rounding away.
/// </summary>
public abstract class Optimizer(IReadOnlyList<TrainableParameter> parameters, double weightDecay)
{
    protected IReadOnlyList<TrainableParameter> Parameters { get; } = parameters;
    protected double WeightDecay { get; } = weightDecay;
    private readonly Dictionary<string, Tensor> state = new(StringComparer.Ordinal);

    public long StepCount { get; private set; }

    /// <summary>
    /// false updates low-precision parameters in place (bf16: full), without float32 master weights, and keeps their
    /// state (moments) in the parameter's dtype as torch's optimizers do: an 8B AdamW then needs 32 GB of moments, not 64.
    /// </summary>
    public bool MasterWeights { get; init; } = true;

    /// <summary>
    /// offload_optimizer: cpu — the device of the state and of the update itself (the host) when the parameters live
    /// elsewhere (a GPU): each step brings the gradient over, updates a host copy of the weights and sends the result
    /// back, so the GPU holds no moments. Null keeps everything beside the parameters.
    /// </summary>
    public Device? StateDevice { get; init; }
    // Host copies of float32 (or bf16: full) parameters under offload: equal to the parameters, so not checkpointed.
    private readonly Dictionary<string, Tensor> hostCopies = new(StringComparer.Ordinal);

    /// <param name="gradMultiplier">a scalar on the parameters' device applied to the float32 gradients (clipping and loss-scale undo), or null.</param>
    public void Step(double lr, Tensor? gradMultiplier = null)
    {
        StepCount++;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var p in Parameters)
        {
            if (p.Parameter.grad is not { } grad) continue;
            // Per parameter: the update's temporaries (a bf16 gradient's float32 copy, AdamW's denominator, ...) die here,
            // so the step needs a copy or two of the largest parameter on top of the state, not of every parameter.
            using var parameterScope = NewDisposeScope();
            bool offloaded = Offloaded(p);
            // A float32 gradient on the parameters' device is used as it is (`to` returns the same storage) and scaled in
            // place: the loop drops every gradient after the step (ZeroGrad), so nothing reads it unscaled again.
            var grad32 = offloaded ? grad.to(ScalarType.Float32, StateDevice!) : grad.to(ScalarType.Float32);
            if (gradMultiplier is not null) grad32.mul_(offloaded ? gradMultiplier.to(StateDevice!) : gradMultiplier);
            bool viaMaster = MasterWeights && p.Parameter.dtype != ScalarType.Float32;
            var weight = viaMaster ? Master(p) : offloaded ? HostCopy(p) : p.Parameter;
            Update(p, weight, grad32, lr);
            if (viaMaster || offloaded) p.Parameter.copy_(weight);
        }
    }

    /// <summary>One update of <paramref name="weight"/> (the parameter, or its float32 master) from its float32 gradient.</summary>
    protected abstract void Update(TrainableParameter p, Tensor weight, Tensor grad, double lr);

    /// <summary>The named state tensor, created as zeros of the given shape on first use.</summary>
    protected Tensor State(TrainableParameter p, string slot, long[]? shape = null, ScalarType? dtype = null)
    {
        var key = p.Name + "." + slot;
        if (!state.TryGetValue(key, out var value))
        {
            var type = dtype ?? (MasterWeights ? ScalarType.Float32 : p.Parameter.dtype);
            value = zeros(shape ?? p.Parameter.shape, type, StateDevice ?? p.Parameter.device).DetachFromDisposeScope();
            state[key] = value;
        }
        return value;
    }

    /// <summary>The float32 master copy of a low-precision parameter, taken from the parameter on first use.</summary>
    private Tensor Master(TrainableParameter p)
    {
        var key = p.Name + ".master";
        if (!state.TryGetValue(key, out var value))
        {
            value = p.Parameter.detach().to(ScalarType.Float32, StateDevice ?? p.Parameter.device, copy: true).DetachFromDisposeScope();
            state[key] = value;
        }
        return value;
    }

    private bool Offloaded(TrainableParameter p) => StateDevice is { } host && p.Parameter.device != host;

    /// <summary>The host copy of an offloaded parameter the update runs on, taken from the parameter on first use.</summary>
    private Tensor HostCopy(TrainableParameter p)
    {
        if (!hostCopies.TryGetValue(p.Name, out var value))
        {
            value = p.Parameter.detach().to(p.Parameter.dtype, StateDevice!, copy: true).DetachFromDisposeScope();
            hostCopies[p.Name] = value;
        }
        return value;
    }

    /// <summary>Elements per slice of an elementwise update: a slice of the weight, gradient and moments and the update's temporaries stay in cache.</summary>
    public const long SliceElements = 1L << 18;

    /// <summary>
    /// Runs an elementwise update slice by slice over equally shaped tensors (weight, gradient, state): an AdamW step
    /// makes a dozen passes over each, and over a whole 16M-element embedding every pass goes to memory, while on
    /// 1 MiB slices all but the first stay in cache. Elementwise ops give the same values however the tensor is cut.
    /// Non-contiguous tensors are updated whole.
    /// </summary>
    protected static void Sliced(Tensor[] tensors, Action<Tensor[]> update)
    {
        long count = tensors[0].numel();
        if (count <= SliceElements || tensors.Any(t => !t.is_contiguous() || t.numel() != count))
        {
            update(tensors);
            return;
        }
        using var scope = NewDisposeScope();
        var flat = tensors.Select(t => t.view(-1)).ToArray();
        for (long start = 0; start < count; start += SliceElements)
        {
            using var sliceScope = NewDisposeScope();
            long length = Math.Min(SliceElements, count - start);
            update(flat.Select(t => t.narrow(0, start, length)).ToArray());
        }
    }

    protected static void DecoupledDecay(TrainableParameter p, Tensor weight, double lr, double weightDecay)
    {
        if (p.Decay && weightDecay != 0) weight.mul_(1 - lr * weightDecay);
    }

    public void ZeroGrad()
    {
        foreach (var p in Parameters) p.Parameter.grad = null;
    }

    public IReadOnlyDictionary<string, Tensor> StateTensors => state;

    public void LoadState(IEnumerable<KeyValuePair<string, Tensor>> tensors, long stepCount)
    {
        // Checkpoints are read on the host; the state lives beside the parameters (the GPU when training there) or on the offload device.
        var device = StateDevice ?? (Parameters.Count > 0 ? Parameters[0].Parameter.device : CPU);
        foreach (var (key, value) in tensors)
        {
            var placed = value.device == device ? value : value.to(device);
            if (!ReferenceEquals(placed, value)) value.Dispose();
            state[key] = placed.DetachFromDisposeScope();
        }
        StepCount = stepCount;
    }

    public static Optimizer Create(OptimizerType type, IReadOnlyList<TrainableParameter> parameters, double weightDecay, double beta1, double beta2, double epsilon, bool masterWeights = true, Device? stateDevice = null) => type switch
    {
        OptimizerType.AdamwTorch or OptimizerType.AdamwTorchFused or OptimizerType.AdamwHf or OptimizerType.Adamw => new AdamW(parameters, weightDecay, beta1, beta2, epsilon) { MasterWeights = masterWeights, StateDevice = stateDevice },
        OptimizerType.Sgd => new Sgd(parameters, weightDecay) { MasterWeights = masterWeights, StateDevice = stateDevice },
        OptimizerType.Lion => new Lion(parameters, weightDecay, beta1, beta2) { MasterWeights = masterWeights, StateDevice = stateDevice },
        OptimizerType.Adafactor => new Adafactor(parameters, weightDecay) { MasterWeights = masterWeights, StateDevice = stateDevice },
        OptimizerType.Adamw8bit => new AdamW8bit(parameters, weightDecay, beta1, beta2, epsilon) { MasterWeights = masterWeights, StateDevice = stateDevice },
        OptimizerType.Muon => new Muon(parameters, weightDecay, beta1, beta2, epsilon) { MasterWeights = masterWeights, StateDevice = stateDevice },
        _ => throw new InvalidInputException($"optimizer: {ConfigNames.ToSnake(type.ToString())} is not supported; allowed: adamw_torch, adamw_torch_fused, adamw_hf, adamw, sgd, lion, adafactor, adamw_8bit, muon"),
    };
}

/// <summary>torch.optim.AdamW: decoupled weight decay, bias-corrected moments.</summary>
public sealed class AdamW(IReadOnlyList<TrainableParameter> parameters, double weightDecay, double beta1, double beta2, double epsilon)
    : Optimizer(parameters, weightDecay)
{
    protected override void Update(TrainableParameter p, Tensor weight, Tensor grad, double lr) =>
        Sliced([weight, grad, State(p, "exp_avg"), State(p, "exp_avg_sq")], t => AdamStep(p, t[0], t[1], lr, t[2], t[3], beta1, beta2, epsilon, WeightDecay, StepCount));

    /// <summary>One AdamW update with moments <paramref name="m"/> and <paramref name="v"/> (float32, updated in place).</summary>
    internal static void AdamStep(TrainableParameter p, Tensor weight, Tensor grad, double lr, Tensor m, Tensor v,
        double beta1, double beta2, double epsilon, double weightDecay, long step)
    {
        DecoupledDecay(p, weight, lr, weightDecay);
        m.mul_(beta1).add_(grad, alpha: 1 - beta1);
        v.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2);
        double biasCorrection1 = 1 - Math.Pow(beta1, step);
        double biasCorrection2 = 1 - Math.Pow(beta2, step);
        // Two temporaries of the parameter's size (the denominator, then the update), each op in place where it can be.
        // The order of operations is kept as it was: (m / denominator) · (lr / bias correction) rounds differently
        // from torch's addcdiv_, and the data-parallel equality tests sit close to AdamW's first-step amplification
        // of that rounding.
        var update = m / v.sqrt().div_(Math.Sqrt(biasCorrection2)).add_(epsilon);
        weight.sub_(update.mul_(lr / biasCorrection1).to(weight.dtype));
    }
}

/// <summary>Plain SGD (what transformers' "sgd" optim builds: no momentum), with decoupled weight decay.</summary>
public sealed class Sgd(IReadOnlyList<TrainableParameter> parameters, double weightDecay) : Optimizer(parameters, weightDecay)
{
    protected override void Update(TrainableParameter p, Tensor weight, Tensor grad, double lr)
    {
        DecoupledDecay(p, weight, lr, WeightDecay);
        weight.sub_((grad * lr).to(weight.dtype));
    }
}

/// <summary>Lion (Chen et al. 2023): sign of the interpolated momentum, decoupled weight decay.</summary>
public sealed class Lion(IReadOnlyList<TrainableParameter> parameters, double weightDecay, double beta1, double beta2) : Optimizer(parameters, weightDecay)
{
    protected override void Update(TrainableParameter p, Tensor weight, Tensor grad, double lr) => Sliced([weight, grad, State(p, "exp_avg")], t =>
    {
        var (w, g, m) = (t[0], t[1], t[2]);
        DecoupledDecay(p, w, lr, WeightDecay);
        var direction = (m * beta1 + g * (1 - beta1)).sign();
        w.sub_((direction * lr).to(w.dtype));
        m.mul_(beta2).add_(g, alpha: 1 - beta2);
    });
}

/// <summary>
/// Adafactor as transformers' Trainer builds it for optim "adafactor" (scale_parameter=False, relative_step=False,
/// external lr): factored second moments for matrices, update RMS clipped at 1, no first moment.
/// </summary>
public sealed class Adafactor(IReadOnlyList<TrainableParameter> parameters, double weightDecay) : Optimizer(parameters, weightDecay)
{
    private const double Eps1 = 1e-30, ClipThreshold = 1.0, DecayRate = -0.8;

    protected override void Update(TrainableParameter p, Tensor weight, Tensor grad, double lr)
    {
        double beta2t = 1.0 - Math.Pow(StepCount, DecayRate);
        var squared = grad * grad + Eps1;
        Tensor update;
        if (grad.dim() >= 2)
        {
            var shape = grad.shape;
            var row = State(p, "exp_avg_sq_row", shape[..^1]);
            var col = State(p, "exp_avg_sq_col", [.. shape[..^2], shape[^1]]);
            row.mul_(beta2t).add_(squared.mean([-1]), alpha: 1 - beta2t);
            col.mul_(beta2t).add_(squared.mean([-2]), alpha: 1 - beta2t);
            var rowFactor = (row / row.mean([-1], keepdim: true)).rsqrt().unsqueeze(-1);
            var colFactor = col.unsqueeze(-2).rsqrt();
            update = rowFactor * colFactor * grad;
        }
        else
        {
            var v = State(p, "exp_avg_sq");
            v.mul_(beta2t).add_(squared, alpha: 1 - beta2t);
            update = v.rsqrt() * grad;
        }
        // max(1, RMS/threshold) as a tensor: no read-back to the host inside the step.
        var rms = update.pow(2).mean().sqrt();
        update = update / (rms / ClipThreshold).clamp_min(1.0) * lr;
        if (p.Decay && WeightDecay != 0) weight.add_(weight * (-WeightDecay * lr));
        weight.sub_(update.to(weight.dtype));
    }
}
