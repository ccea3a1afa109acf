using SharpTune.Config;
using SharpTune.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// How a run computes: the dtype the model is held and run in, whether trainable low-precision weights are updated
/// through float32 master copies, and whether the loss is scaled (fp16).
/// </summary>
public sealed record TrainingPrecision(ScalarType ComputeDType, bool MasterWeights, bool LossScaling)
{
    public static TrainingPrecision Float32 { get; } = new(ScalarType.Float32, false, false);

    /// <summary>
    /// bf16: true → bf16 compute, float32 master weights and optimizer state; full → bf16 weights updated in place;
    /// auto → bf16 compute with float32 masters where <see cref="PrecisionPolicy.PrefersBf16"/> says so, else fp32.
    /// fp16: true → fp16 compute with dynamic loss scaling and float32 master weights.
    /// </summary>
    public static TrainingPrecision Resolve(TrainConfig config, Device device)
    {
        if (config.Fp16 && config.Bf16 is Bf16Mode.True or Bf16Mode.Full)
            throw new InvalidInputException("fp16: true and bf16: true both set; choose one (bf16 needs no loss scaling)");
        if (config.Fp16) return new(ScalarType.Float16, true, true);
        return config.Bf16 switch
        {
            Bf16Mode.True => new(ScalarType.BFloat16, true, false),
            Bf16Mode.Full => new(ScalarType.BFloat16, false, false),
            Bf16Mode.Auto when PrecisionPolicy.PrefersBf16(device) => new(ScalarType.BFloat16, true, false),
            _ => Float32,
        };
    }

    public string Describe() => ComputeDType switch
    {
        ScalarType.BFloat16 when MasterWeights => "bf16 compute, fp32 master weights",
        ScalarType.BFloat16 => "bf16 weights and compute (bf16: full)",
        ScalarType.Float16 => "fp16 compute, fp32 master weights, dynamic loss scaling",
        _ => "fp32",
    };
}

/// <summary>
/// torch.cuda.amp.GradScaler's dynamic loss scale: the loss is multiplied by the scale before backward; a step whose
/// gradients hold inf/NaN is skipped and halves the scale; every 2,000 clean steps in a row double it.
/// </summary>
public sealed class DynamicLossScaler(double initialScale = 65536, double growthFactor = 2, double backoffFactor = 0.5, int growthInterval = 2000)
{
    public double Scale { get; private set; } = initialScale;
    public int CleanSteps { get; private set; }

    /// <summary>Records whether this step's gradients were finite; returns whether the optimizer step may run.</summary>
    public bool Update(bool gradientsFinite)
    {
        if (!gradientsFinite)
        {
            Scale *= backoffFactor;
            CleanSteps = 0;
            return false;
        }
        if (++CleanSteps >= growthInterval)
        {
            Scale *= growthFactor;
            CleanSteps = 0;
        }
        return true;
    }

    public void Restore(double scale, int cleanSteps)
    {
        Scale = scale;
        CleanSteps = cleanSteps;
    }
}
