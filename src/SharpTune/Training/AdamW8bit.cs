using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// AdamW with 8-bit block-wise state, as bitsandbytes' AdamW8bit (optimizer adamw_8bit, adamw_bnb_8bit,
/// paged_adamw_8bit, adamw_torch_8bit). Each step dequantizes both moments, applies the float32 AdamW update to them
/// and to the weight, and quantizes the new moments again: exp_avg with the signed dynamic map, exp_avg_sq with the
/// unsigned one, blocks of 2048 with a float32 absmax each (2 bytes + 8/2048 per parameter). Tensors with fewer than
/// <see cref="MinQuantizedSize"/> values keep float32 moments, as bitsandbytes' min_8bit_size does (norm vectors, biases).
/// The codes and scales are named state tensors, so checkpoints hold them and a resumed run continues exactly.
/// </summary>
public sealed class AdamW8bit(IReadOnlyList<TrainableParameter> parameters, double weightDecay, double beta1, double beta2, double epsilon)
    : Optimizer(parameters, weightDecay)
{
    public const int MinQuantizedSize = 4096;

    private readonly BlockwiseQuantizer signedMap = new(signed: true);
    private readonly BlockwiseQuantizer unsignedMap = new(signed: false);

    public BlockwiseQuantizer FirstMomentQuantizer => signedMap;
    public BlockwiseQuantizer SecondMomentQuantizer => unsignedMap;

    protected override void Update(TrainableParameter p, Tensor weight, Tensor grad, double lr)
    {
        if (p.Parameter.numel() < MinQuantizedSize)
        {
            AdamW.AdamStep(p, weight, grad, lr, State(p, "exp_avg", dtype: ScalarType.Float32), State(p, "exp_avg_sq", dtype: ScalarType.Float32),
                beta1, beta2, epsilon, WeightDecay, StepCount);
            return;
        }
        long[] blocks = [BlockwiseQuantizer.Blocks(p.Parameter.numel())];
        var mCodes = State(p, "exp_avg.codes", dtype: ScalarType.Byte);
        var mScale = State(p, "exp_avg.absmax", blocks, ScalarType.Float32);
        var vCodes = State(p, "exp_avg_sq.codes", dtype: ScalarType.Byte);
        var vScale = State(p, "exp_avg_sq.absmax", blocks, ScalarType.Float32);
        var m = signedMap.Dequantize(mCodes, mScale);
        var v = unsignedMap.Dequantize(vCodes, vScale);
        AdamW.AdamStep(p, weight, grad, lr, m, v, beta1, beta2, epsilon, WeightDecay, StepCount);
        signedMap.Quantize(m, mCodes, mScale);
        unsignedMap.Quantize(v, vCodes, vScale);
    }

    /// <summary>The float32 moments the state stands for (tests and diagnostics).</summary>
    public (Tensor ExpAvg, Tensor ExpAvgSq) Moments(TrainableParameter p)
    {
        if (p.Parameter.numel() < MinQuantizedSize)
            return (StateTensors[p.Name + ".exp_avg"], StateTensors[p.Name + ".exp_avg_sq"]);
        return (signedMap.Dequantize(StateTensors[p.Name + ".exp_avg.codes"], StateTensors[p.Name + ".exp_avg.absmax"]),
                unsignedMap.Dequantize(StateTensors[p.Name + ".exp_avg_sq.codes"], StateTensors[p.Name + ".exp_avg_sq.absmax"]));
    }
}
