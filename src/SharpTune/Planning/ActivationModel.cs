using SharpTune.Modeling;

namespace SharpTune.Planning;

/// <summary>
/// The bytes autograd keeps between forward and backward for one micro-batch, counted op by op from the modules
/// SharpTune runs (each forward sits in a dispose scope, so only what an op saves for its backward survives):
/// RmsNorm saves its float32 input, the normalised value (when its weight trains) and 1/rms; a linear saves its input
/// when its weight trains, a LoRA adapter its (float32) input and the rank-r product; RoPE's output, the GQA-expanded
/// k/v, SDPA's output and log-sum-exp (flash path: no T × T scores), the (B, 1, T, T) mask; the MLP's gate, activation,
/// up and product. Gradient checkpointing keeps each layer's input and recomputes one layer at a time.
/// </summary>
public sealed class ActivationModel(ModelConfig c, ModelInventory inventory, int d, bool full, Func<LinearShape, bool> adapted, bool dora, bool dropout, int rank, bool checkpointing)
{
    private const int F32 = 4;

    public string AttentionPath => c.AttnLogitSoftcapping is null ? "SDPA with mask, no T×T scores kept" : "eager soft-capped attention, T×T scores kept";

    /// <summary>Everything saved at the start of backward: per-layer sets (or checkpointed inputs + one layer), the final norm, the loss rows, masks and rotary tables.</summary>
    public long SavedBytes(int batch, int seqLen)
    {
        long n = (long)batch * seqLen;
        long layers = checkpointing
            ? c.NumHiddenLayers * n * c.HiddenSize * d + (c.Moe is { } moe ? c.NumHiddenLayers * n * moe.NumExperts * d : 0) + LayerSavedBytes(batch, seqLen)
            : Enumerable.Range(0, c.NumHiddenLayers).Sum(i => LayerSavedBytes(batch, seqLen, i));
        long final = NormBytes(n, c.HiddenSize, full) + n * c.HiddenSize * d;                   // final norm + the loss's selected rows
        long masks = (long)batch * seqLen * seqLen * d * (c.SlidingWindow is not null && c.SlidingLayers.Any(s => s) ? 2 : 1);
        long rotary = 2L * batch * seqLen * c.HeadDim * d * (c.LocalRopeTheta is null ? 1 : 2);
        return layers + final + masks + rotary;
    }

    public long LayerSavedBytes(int batch, int seqLen) => Enumerable.Range(0, c.NumHiddenLayers).Max(i => LayerSavedBytes(batch, seqLen, i));

    /// <summary>One decoder layer's saved tensors.</summary>
    public long LayerSavedBytes(int batch, int seqLen, int layerIndex)
    {
        long n = (long)batch * seqLen;
        long h = c.HiddenSize, q = (long)c.NumAttentionHeads * c.HeadDim, kv = (long)c.NumKeyValueHeads * c.HeadDim;
        var linears = inventory.Layers[layerIndex];
        LinearShape Find(string name) => linears.First(l => l.Name == name);
        long bytes = 0;

        // Attention: input norm, projections' inputs, q/k norms, RoPE outputs, GQA expansion, SDPA output, o_proj input.
        bytes += NormBytes(n, h, full);
        var qkv = c.FusedProjections ? [Find("qkv_proj")] : new[] { Find("q_proj"), Find("k_proj"), Find("v_proj") };
        bytes += InputBytes(qkv, n, h);
        if (c.QkNorm) bytes += NormBytes(n, q, full) + NormBytes(n, kv, full);
        bytes += n * q * d;                                                           // rotated (and scaled) q, saved by SDPA
        bytes += c.KvGroups > 1 ? 2 * n * q * d : 2 * n * kv * d;                   // GQA-expanded k, v (or rotated k and v)
        bytes += n * q * d + (long)batch * c.NumAttentionHeads * seqLen * F32;       // output + log-sum-exp
        if (c.AttnLogitSoftcapping is not null)
            bytes += (long)batch * c.NumAttentionHeads * seqLen * seqLen * (2L * d + F32);   // tanh, softmax (fp32), probabilities
        bytes += InputBytes([Find("o_proj")], n, q);                                  // y reshaped, o_proj's input
        if (c.SandwichNorms) bytes += NormBytes(n, h, full) + NormBytes(n, h, full);   // post-attention and pre-feedforward
        else bytes += NormBytes(n, h, full);                                          // post_attention_layernorm

        // Feed-forward.
        if (c.Moe is { } moe && moe.SparseLayers[layerIndex])
        {
            var router = Find("gate");
            long routed = n * moe.TopK;
            bytes += InputBytes([router], n, h);
            bytes += n * moe.NumExperts * (d + F32) + routed * (F32 + 8);               // router logits, softmax, top-k weights and ids
            var gate = Find(moe.Layout == MoeLayout.Mixtral ? "w1" : "gate_proj");
            var up = Find(moe.Layout == MoeLayout.Mixtral ? "w3" : "up_proj");
            var down = Find(moe.Layout == MoeLayout.Mixtral ? "w2" : "down_proj");
            bytes += InputBytes([gate, up], routed, h);                               // rows gathered per expert
            bytes += 3 * routed * moe.ExpertIntermediateSize * d;                     // gate, activation, up
            bytes += InputBytes([down], routed, moe.ExpertIntermediateSize);          // product
            bytes += routed * h * d;                                                  // concatenated expert outputs
        }
        else
        {
            long i = c.IntermediateSize;
            var gateUp = c.FusedProjections ? [Find("gate_up_proj")] : new[] { Find("gate_proj"), Find("up_proj") };
            bytes += InputBytes(gateUp, n, h);
            bytes += 3 * n * i * d;                                                   // gate, activation, up
            bytes += InputBytes([Find("down_proj")], n, i);                           // product, down's input
        }
        if (c.SandwichNorms) bytes += NormBytes(n, h, full);
        return bytes;
    }

    /// <summary>Activation gradients alive while one layer is differentiated (the incoming and outgoing hidden gradient, the MLP's).</summary>
    public long BackwardWorkingBytes(int batch, int seqLen)
    {
        long n = (long)batch * seqLen;
        long width = c.Moe is { } moe ? (long)moe.TopK * moe.ExpertIntermediateSize : c.IntermediateSize;
        return n * (3 * c.HiddenSize + 2 * width) * d;
    }

    /// <summary>
    /// ChunkedCrossEntropy, the larger of its forward and its backward. The forward holds one chunk's float32 logits
    /// (turned into their gradient in place; with the final soft-cap also the scaled raw logits, their tanh, the capped
    /// logits and the cap's slope; below fp32 the raw logits and the gradient's cast) beside the unscaled gradients it
    /// fills: the rows' (NHd) and, for a trained output matrix, its float32 one (4VH). The backward returns scaled copies
    /// of both (in bf16 the output matrix's rounded too) while the unscaled ones are still saved.
    /// </summary>
    public long LossBackwardBytes(int batch, int seqLen, int chunk)
    {
        long rows = (long)batch * seqLen;
        long chunkLogits = Math.Min(chunk, rows) * c.VocabSize * (F32 * (c.FinalLogitSoftcapping is null ? 1 : 5) + (d == F32 ? 0 : 2 * d));
        long gradients = rows * c.HiddenSize * d + (full ? (long)c.VocabSize * c.HiddenSize * F32 : 0);
        long scaledCopies = rows * c.HiddenSize * d + (full ? (long)c.VocabSize * c.HiddenSize * (F32 + (d == F32 ? 0 : d)) : 0);
        return gradients + Math.Max(chunkLogits, scaledCopies);
    }

    /// <summary>RmsNorm: float32 input (a copy when the compute dtype is not fp32), 1/rms, and the normalised value when the weight trains.</summary>
    private long NormBytes(long n, long width, bool weightTrains) => n * width * F32 + n * F32 + (weightTrains ? n * width * (c.NormStyle == NormStyle.OnePlusWeight ? F32 : d) : 0);

    /// <summary>
    /// What the linears reading one input save of it: the input itself (once) when a base weight trains; per LoRA adapter
    /// a float32 copy (none when the input is fp32 already), the dropout output and mask, the rank-r product, and for DoRA
    /// the dense fp32 weight and two output-sized products.
    /// </summary>
    private long InputBytes(IEnumerable<LinearShape> readers, long rows, long width)
    {
        long bytes = full ? rows * width * d : 0;
        bool inputSavedByLora = false;
        foreach (var l in readers)
        {
            if (full || !adapted(l)) continue;
            long copies = l.IsExpert ? 1 : l.Copies;     // an expert's rows are already a share of the tokens
            if (dropout) bytes += copies * rows * width * (F32 + 1);
            else if (d != F32) bytes += copies * rows * width * F32;
            else if (!inputSavedByLora) { bytes += rows * width * d; inputSavedByLora = true; }
            bytes += copies * rows * rank * F32;
            if (dora) bytes += l.In * l.Out * l.Copies * F32 + 2 * copies * rows * l.Out * F32;
        }
        return bytes;
    }
}
