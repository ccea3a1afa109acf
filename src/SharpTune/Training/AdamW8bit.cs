using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// AdamW with 8-bit block-wise state, as bitsandbytes' AdamW8bit (optimizer adamw_8bit, adamw_bnb_8bit,
/// paged_adamw_8bit, adamw_torch_8bit). Each step dequantizes both moments, applies the float32 AdamW update to them
/// and to the weight, and quantizes the new moments again: exp_avg with the signed dynamic map, exp_avg_sq with the
/// unsigned one, blocks of 2048 with a float32 absmax each (2 bytes + 8/2048 per parameter). Tensors with fewer than
/// <see cref="MinQuantizedSize"/> values keep float32 moments, as bitsandbytes' min_8bit_size does (norm vectors, biases).
/// The codes and scales are named state tensors, so checkpoints hold them and a resumed run continues exactly.
/// A large tensor is updated slice by slice (whole quantization blocks, so no value changes): its float32 moments and
/// the update's temporaries then exist for one slice at a time instead of for the whole tensor, which is what keeps
/// the step's working set small when the state itself is small (an 8B model's lm_head has 525M elements).
/// </summary>
public sealed class AdamW8bit(IReadOnlyList<TrainableParameter> parameters, double weightDecay, double beta1, double beta2, double epsilon,
    long sliceElements = AdamW8bit.DefaultSliceElements)
    : Optimizer(parameters, weightDecay)
{
    public const int MinQuantizedSize = 4096;

    /// <summary>
    /// Elements updated at once: 512 blocks. A slice holds its float32 moments (8 B per element) and AdamW's sqrt,
    /// denominator, quotient and step (16 B) while the quantizer's absolute values, quotient, clamp and int64 bucket
    /// indices (21 B) come and go: about 48 MiB at this size.
    /// </summary>
    public const long DefaultSliceElements = 512L * BlockwiseQuantizer.BlockSize;

    /// <summary>Bytes of temporaries per element of the slice being updated (counted by the memory planner).</summary>
    public const int SliceTemporaryBytesPerElement = 48;

    private readonly long slice = sliceElements > 0 && sliceElements % BlockwiseQuantizer.BlockSize == 0
        ? sliceElements
        : throw new ArgumentOutOfRangeException(nameof(sliceElements), sliceElements, "a positive multiple of the block size");

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
        long n = p.Parameter.numel();
        long[] blocks = [BlockwiseQuantizer.Blocks(n)];
        var mCodes = State(p, "exp_avg.codes", dtype: ScalarType.Byte).view(-1);
        var mScale = State(p, "exp_avg.absmax", blocks, ScalarType.Float32);
        var vCodes = State(p, "exp_avg_sq.codes", dtype: ScalarType.Byte).view(-1);
        var vScale = State(p, "exp_avg_sq.absmax", blocks, ScalarType.Float32);
        var flatWeight = weight.view(-1);
        var flatGrad = grad.reshape(-1);
        for (long start = 0; start < n; start += slice)
        {
            using var sliceScope = NewDisposeScope();
            long length = Math.Min(slice, n - start);
            long firstBlock = start / BlockwiseQuantizer.BlockSize, blockCount = BlockwiseQuantizer.Blocks(length);
            var mSliceCodes = mCodes.narrow(0, start, length);
            var mSliceScale = mScale.narrow(0, firstBlock, blockCount);
            var vSliceCodes = vCodes.narrow(0, start, length);
            var vSliceScale = vScale.narrow(0, firstBlock, blockCount);
            var m = signedMap.Dequantize(mSliceCodes, mSliceScale);
            var v = unsignedMap.Dequantize(vSliceCodes, vSliceScale);
            AdamW.AdamStep(p, flatWeight.narrow(0, start, length), flatGrad.narrow(0, start, length), lr, m, v,
                beta1, beta2, epsilon, WeightDecay, StepCount);
            signedMap.Quantize(m, mSliceCodes, mSliceScale);
            unsignedMap.Quantize(v, vSliceCodes, vSliceScale);
        }
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
