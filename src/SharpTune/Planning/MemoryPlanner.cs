using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Training;

namespace SharpTune.Planning;

/// <summary>
/// Predicts a training run's peak memory per device from the config and the model's config.json, following what the
/// code SharpTune runs allocates: TrainingRecipe.LoadModel (through ModelLoader) (dtypes, quantized base, adapters), Optimizer (state slots,
/// float32 masters, per-parameter step temporaries), the autograd graph of the decoder layers (the tensors each op saves
/// for backward, see docs/memory.md), GradientCheckpointing (one hidden state per layer plus one recomputed layer),
/// ChunkedCrossEntropy (one chunk of float32 logits) and generation's KV cache. ZeRO stages divide optimizer state (1),
/// gradients (2) and weights (3) by the world size.
/// </summary>
public sealed class MemoryPlanner(TrainConfig config, ModelConfig model, PlanDevice device, int worldSize = 1, int zeroStage = 0)
{
    private const int F32 = 4;
    /// <summary>Objectives.cs: CausalLmObjective's default chunk of tokens per logits block.</summary>
    private const int CrossEntropyChunk = ChunkedCrossEntropy.DefaultChunkTokens;

    private readonly ModelInventory inventory = ModelInventory.From(model);

    /// <summary>
    /// Share of the backward pass's freed buffers still resident at the optimizer step of a CPU process (measured 0–0.14
    /// with Native.HeapPolicy's fixed mmap threshold and periodic heap trim; 0.55–0.7 under glibc's dynamic threshold).
    /// </summary>
    public const double CpuHeapRetention = 0.1;

    public MemoryForecast Forecast() => Forecast(config.MicroBatchSize, config.SequenceLen, withFits: true);

    private MemoryForecast Forecast(int microBatch, int seqLen, bool withFits)
    {
        if (worldSize < 1) throw new InvalidInputException($"--nproc: {worldSize} must be ≥ 1");
        if (zeroStage is < 0 or > 3) throw new InvalidInputException($"--zero-stage: {zeroStage} must be 0, 1, 2 or 3");
        var notes = new List<string>();
        int d = ComputeBytes(out bool masters, notes);
        bool quant4 = config.LoadIn4bit, quant8 = config.LoadIn8bit;
        bool full = config.Adapter is null;
        var adapted = AdaptedNames();
        int trainableBytes = full ? d : F32;

        // Weights: dense parameters in the compute dtype; quantized linears as their stored blocks; adapters in float32.
        long denseParams = inventory.EmbeddingParams + inventory.LmHeadParams + inventory.NormParams;
        long quantizedBytes = 0, linearDenseParams = 0, adapterParams = 0, doraParams = 0, biasParams = 0;
        foreach (var layer in inventory.Layers)
            foreach (var l in layer)
            {
                long weights = l.In * l.Out * l.Copies;
                biasParams += l.Bias ? l.Out * l.Copies : 0;
                if (quant4 || quant8) quantizedBytes += l.Copies * QuantizedBytes(l, quant4);
                else linearDenseParams += weights;
                if (!full && adapted(l))
                {
                    adapterParams += (long)Rank * (l.In + l.Out) * l.Copies;
                    if (config.PeftUseDora) doraParams += l.Out * l.Copies;
                }
            }
        denseParams += linearDenseParams + biasParams;
        var trainableTensors = (full ? inventory.AllTensors() : inventory.AdapterTensors(adapted, Rank, config.PeftUseDora)).ToList();
        long trainableParams = trainableTensors.Sum(t => t.Total);
        long weightBytes = denseParams * d + quantizedBytes + (adapterParams + doraParams) * F32;
        long weightShard = zeroStage >= 3 ? weightBytes / worldSize + LargestLayerBytes(d) : weightBytes;

        var components = new List<MemoryComponent>
        {
            new("runtime", device.RuntimeBytes, device.IsGpu ? "CUDA context and libraries" : ".NET runtime, libtorch, tokenizer and data (measured)"),
        };
        components.Add(new("weights", denseParams * d / (zeroStage >= 3 ? worldSize : 1),
            $"{denseParams:N0} parameters in {DTypeName(d)}{(zeroStage >= 3 ? $", sharded over {worldSize} (ZeRO-3)" : "")}"));
        if (quantizedBytes > 0)
            components.Add(new("quantized base", quantizedBytes / (zeroStage >= 3 ? worldSize : 1), quant4
                ? $"{inventory.LinearParams - biasParams:N0} linear weights as {(config.Bnb4bitQuantType == QuantType4Bit.Nf4 ? "NF4" : "FP4")} (0.5 B) + absmax {(config.Bnb4bitUseDoubleQuant ? "double-quantized (1 B per 64 + fp32 per 256 blocks)" : "fp32 per 64")}"
                : $"{inventory.LinearParams - biasParams:N0} linear weights as int8 + fp32 row scales"));
        if (adapterParams > 0)
            components.Add(new(config.PeftUseDora ? "DoRA adapters" : "LoRA adapters", (adapterParams + doraParams) * F32,
                $"r {Rank}: {adapterParams + doraParams:N0} parameters in fp32{(doraParams > 0 ? $" (incl. {doraParams:N0} magnitudes)" : "")}"));
        if (zeroStage >= 3) components.Add(new("ZeRO-3 gathered layer", LargestLayerBytes(d), "one decoder layer's weights gathered for compute"));

        long gradBytes = trainableParams * trainableBytes / (zeroStage >= 2 ? worldSize : 1);
        components.Add(new("gradients", gradBytes, $"{trainableParams:N0} trainable parameters in {DTypeName(trainableBytes)}{(zeroStage >= 2 ? $", sharded over {worldSize}" : "")}"));
        var (optimizerBytes, optimizerDetail) = OptimizerBytes(trainableTensors, trainableBytes, masters && trainableBytes != F32);
        optimizerBytes /= zeroStage >= 1 ? worldSize : 1;
        components.Add(new("optimizer state", optimizerBytes, optimizerDetail + (zeroStage >= 1 ? $", sharded over {worldSize}" : "")));

        // The backward pass starts with every saved activation alive plus the loss's backward buffers; the optimizer step
        // holds weights, gradients, state and one parameter's temporaries. The run's peak is the larger.
        var act = new ActivationModel(model, inventory, d, full, adapted, config.PeftUseDora, config.LoraDropout > 0, Rank, config.GradientCheckpointing != GradientCheckpointingMode.False);
        long tokens = (long)microBatch * seqLen;
        long saved = act.SavedBytes(microBatch, seqLen);
        long working = act.BackwardWorkingBytes(microBatch, seqLen);
        long lossBuffers = act.LossBackwardBytes(microBatch, seqLen, CrossEntropyChunk);
        long stepTemporaries = StepTemporaryBytes(trainableTensors, trainableBytes, masters && trainableBytes != F32);
        long resident = device.RuntimeBytes + weightShard;
        long backwardPeak = resident + optimizerBytes + saved + working + lossBuffers;
        // CPU only: the heap's freed blocks are returned only at Native.HeapPolicy's next periodic trim, so RSS at the
        // step still carries a small part of the backward's buffers. The
        // share is measured (docs/memory.md); CUDA's caching allocator reuses them.
        long retained = device.IsGpu ? 0 : (long)(CpuHeapRetention * (saved + working + lossBuffers));
        long stepPeak = resident + gradBytes + optimizerBytes + stepTemporaries + retained;
        long loadPeak = resident + LoadTemporaryBytes(quant4 || quant8, d);
        var (genBytes, genDetail) = GenerationBytes(d);
        long generationPeak = genBytes > 0 ? resident + genBytes : 0;

        components.Add(new("activations", saved, config.GradientCheckpointing != GradientCheckpointingMode.False
            ? $"gradient checkpointing: {model.NumHiddenLayers} layer inputs of {tokens:N0} tokens + one recomputed layer ({PlanDevice.Format(act.LayerSavedBytes(microBatch, seqLen))})"
            : $"{model.NumHiddenLayers} layers × {PlanDevice.Format(act.LayerSavedBytes(microBatch, seqLen))} saved for backward at {microBatch} × {seqLen} tokens ({act.AttentionPath})"));
        components.Add(new("backward working set", working, "activation gradients of the layer being differentiated"));
        components.Add(new("logits / cross-entropy", lossBuffers, $"chunks of {Math.Min(CrossEntropyChunk, tokens)} tokens × {model.VocabSize:N0} vocab in fp32 + hidden-state gradient{(full ? " + fp32 output-weight gradient buffers" : "")}"));
        components.Add(new("optimizer step temporaries", stepTemporaries, "one parameter's update temporaries (the one whose step needs most)"));
        if (retained > 0 && stepPeak >= backwardPeak) components.Add(new("heap kept from backward", retained, $"CPU: {CpuHeapRetention:P0} of the backward's buffers still resident at the step (glibc)"));
        if (genBytes > 0) components.Add(new("KV cache (eval generation)", genBytes, genDetail));

        var phases = new List<(string, long)> { ("load", loadPeak), ("backward", backwardPeak), ("optimizer step", stepPeak) };
        if (generationPeak > 0) phases.Add(("eval generation", generationPeak));
        var (peakPhase, peak) = phases.MaxBy(p => p.Item2);

        var fits = withFits ? LargestFits(seqLen) : [];
        return new MemoryForecast(device, worldSize, zeroStage, peakPhase, components, phases, peak, microBatch, seqLen, fits, notes);
    }

    /// <summary>For micro-batch sizes 1, 2, 4, ... 64: the longest sequence_len (a multiple of 64, ≤ max_position_embeddings) whose peak fits.</summary>
    private IReadOnlyList<(int, int)> LargestFits(int currentSeq)
    {
        var fits = new List<(int, int)>();
        int limit = Math.Max(model.MaxPositionEmbeddings, currentSeq);
        foreach (int mb in new[] { 1, 2, 4, 8, 16, 32, 64 })
        {
            int lo = 0, hi = limit / 64;
            while (lo < hi)
            {
                int mid = (lo + hi + 1) / 2;
                if (Forecast(mb, mid * 64, withFits: false).Fits) lo = mid; else hi = mid - 1;
            }
            if (lo == 0) break;
            fits.Add((mb, lo * 64));
        }
        return fits;
    }

    private int Rank => config.LoraR ?? 8;

    private Func<LinearShape, bool> AdaptedNames()
    {
        if (config.Adapter is null) return _ => false;
        if (config.LoraTargetLinear) return l => !l.IsRouter;
        var targets = config.LoraTargetModules;
        return l => targets.Any(t => t == l.Name);
    }

    /// <summary>TrainingPrecision.Resolve's dtype, with `auto` decided by the planned device.</summary>
    private int ComputeBytes(out bool masters, List<string> notes)
    {
        masters = true;
        if (config.Fp16) return 2;
        switch (config.Bf16)
        {
            case Bf16Mode.True: return 2;
            case Bf16Mode.Full: masters = false; return 2;
            case Bf16Mode.Auto when device.AutoBf16: notes.Add("bf16: auto → bf16 compute with fp32 master weights on this device"); return 2;
            default: masters = false; return F32;
        }
    }

    private long QuantizedBytes(LinearShape l, bool fourBit)
    {
        long n = l.In * l.Out;
        if (!fourBit) return n + l.Out * F32;                        // int8 codes + one fp32 scale per row
        const int block = 64, nestedBlock = 256;
        long blocks = (n + block - 1) / block;
        long absmax = config.Bnb4bitUseDoubleQuant ? blocks + (blocks + nestedBlock - 1) / nestedBlock * F32 + F32 : blocks * F32;
        return (n + 1) / 2 + absmax;
    }

    private long LargestLayerBytes(int d) => inventory.Layers.Select(l => l.Sum(ModelInventory.ParamsOf)).DefaultIfEmpty(0).Max() * d;

    private (long Bytes, string Detail) OptimizerBytes(IReadOnlyList<ParameterTensor> tensors, int paramBytes, bool withMasters)
    {
        long trainable = tensors.Sum(t => t.Total);
        int stateBytes = withMasters || paramBytes == F32 ? F32 : paramBytes;
        long masterBytes = withMasters ? trainable * F32 : 0;
        string masterText = withMasters ? " + fp32 master weights" : "";
        switch (config.Optimizer)
        {
            case OptimizerType.Sgd: return (masterBytes, "sgd: no state" + masterText);
            case OptimizerType.Lion: return (trainable * stateBytes + masterBytes, $"lion: one moment in {DTypeName(stateBytes)}" + masterText);
            case OptimizerType.Adafactor:
                long factored = inventory.Layers.Sum(l => l.Sum(x => (x.In + x.Out) * (long)x.Copies));
                return ((config.Adapter is null ? factored + inventory.NormParams : trainable / 8) * stateBytes + masterBytes, "adafactor: factored second moments" + masterText);
            case OptimizerType.Adamw8bit:
                // AdamW8bit: codes (1 B) and a float32 absmax per 2048-value block for each moment; small tensors keep float32 moments.
                long eightBit = tensors.Sum(t => t.Copies * (t.Elements < AdamW8bit.MinQuantizedSize
                    ? 2L * F32 * t.Elements
                    : 2 * (t.Elements + BlockwiseQuantizer.Blocks(t.Elements) * F32)));
                return (eightBit + masterBytes, $"adamw_8bit: two moments in 8-bit blocks of {BlockwiseQuantizer.BlockSize} ({(double)eightBit / Math.Max(1, trainable):F3} B per parameter)" + masterText);
            case OptimizerType.Muon:
                // Muon: one float32 momentum buffer for the hidden matrices, AdamW's two float32 moments for the rest.
                long orthogonalised = tensors.Where(t => t.IsHiddenMatrix).Sum(t => t.Total);
                return (orthogonalised * F32 + (trainable - orthogonalised) * 2 * F32 + masterBytes,
                    $"muon: fp32 momentum for {orthogonalised:N0} matrix parameters, AdamW moments for the rest" + masterText);
            default:
                return (2 * trainable * stateBytes + masterBytes, $"adamw: two moments in {DTypeName(stateBytes)}" + masterText);
        }
    }

    /// <summary>
    /// Optimizer.Step, per parameter: the float32 gradient (a copy only when the gradient is bf16/fp16; the clipping
    /// multiplier is applied in place), then in the state's dtype AdamW's two temporaries (the denominator, the update
    /// scaled in place), Lion's four and SGD's one, plus the update rounded to the parameter's dtype when they differ.
    /// AdamW8bit updates a large tensor one slice at a time; Muon's Newton–Schulz iterations keep five bf16 products of
    /// the matrix and five of its Gram matrix per iteration.
    /// </summary>
    private long StepTemporaryBytes(IReadOnlyList<ParameterTensor> tensors, int paramBytes, bool withMasters)
    {
        int stateBytes = withMasters || paramBytes == F32 ? F32 : paramBytes;
        int gradient = paramBytes == F32 ? 0 : F32;
        int rounding = stateBytes == paramBytes ? 0 : paramBytes;
        long PerTensor(ParameterTensor t) => config.Optimizer switch
        {
            OptimizerType.Sgd => t.Elements * (gradient + F32 + rounding),
            OptimizerType.Lion => t.Elements * (gradient + 4 * stateBytes + rounding),
            OptimizerType.Adafactor => t.Elements * (gradient + 4 * stateBytes + rounding),
            OptimizerType.Adamw8bit when t.Elements >= AdamW8bit.MinQuantizedSize =>
                t.Elements * gradient + Math.Min(t.Elements, AdamW8bit.DefaultSliceElements) * AdamW8bit.SliceTemporaryBytesPerElement,
            OptimizerType.Adamw8bit => t.Elements * (gradient + 2 * F32 + rounding),
            OptimizerType.Muon when t.IsHiddenMatrix => MuonTemporaryBytes(t, gradient, rounding),
            OptimizerType.Muon => t.Elements * (gradient + 2 * F32 + rounding),
            _ => t.Elements * (gradient + 2 * stateBytes + rounding),
        };
        return tensors.Select(PerTensor).DefaultIfEmpty(0).Max();
    }

    /// <summary>
    /// Muon on one matrix: the Nesterov update (fp32), its bf16 copy and normalisation, per Newton–Schulz step the
    /// Gram matrix, its square, the two scaled terms and their sum (on the smaller side) plus three bf16 products of the
    /// matrix, then the float32 result and its ·lr.
    /// </summary>
    private static long MuonTemporaryBytes(ParameterTensor t, int gradient, int rounding)
    {
        const int bf16 = 2;
        long side = Math.Min(t.Rows, t.Columns);
        return t.Elements * (gradient + F32 + 2 * bf16 + Muon.NewtonSchulzSteps * 3 * bf16 + 2 * F32 + rounding)
               + Muon.NewtonSchulzSteps * 5 * side * side * bf16;
    }

    /// <summary>ModelLoader (dense or quantized): one tensor read in fp32 beside the weights.</summary>
    private long LoadTemporaryBytes(bool quantized, int d) => inventory.LargestTensor * F32 * (quantized || d != F32 ? 2 : 1);

    /// <summary>Generation before/after training (eval_exact_match_samples) or GRPO rollouts: a KV cache of the whole sequence.</summary>
    private (long Bytes, string Detail) GenerationBytes(int d)
    {
        int batch;
        if (config.Rl == RlType.Grpo) batch = Math.Max(config.MicroBatchSize, config.Trl.NumGenerations);
        else if (config.EvalExactMatchSamples > 0) batch = config.EvalBatchSize ?? config.MicroBatchSize;
        else return (0, "");
        long kv = 2L * model.NumHiddenLayers * batch * model.NumKeyValueHeads * model.HeadDim * config.SequenceLen * d;
        long logits = (long)batch * model.VocabSize * F32 * 2;
        return (kv + logits, $"2 × {model.NumHiddenLayers} layers × {batch} sequences × {model.NumKeyValueHeads} KV heads × {model.HeadDim} × {config.SequenceLen} tokens in {DTypeName(d)} + last-position logits");
    }

    private static string DTypeName(int bytes) => bytes == F32 ? "fp32" : "bf16/fp16";
}
