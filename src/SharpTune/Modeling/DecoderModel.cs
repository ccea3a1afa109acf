using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>How the decoder runs one layer; gradient checkpointing swaps in a recomputing runner.</summary>
public delegate (Tensor Hidden, Tensor? RouterLogits) LayerRunner(DecoderLayer layer, Tensor hidden, AttentionInputs inputs);

/// <summary>
/// How the model runs one of its parameter groups outside the decoder layers (embedding, final norm, output
/// projection): <paramref name="compute"/> applied to <paramref name="input"/> (the input gradients flow to) and
/// <paramref name="extra"/> (tensors the computation reads, without gradient). ZeRO-3 swaps in a runner that gathers the
/// group's sharded parameters around the call and recomputes it in backward.
/// </summary>
public delegate Tensor GroupRunner(nn.Module group, Func<Tensor, Tensor?[], Tensor> compute, Tensor input, params Tensor?[] extra);

/// <summary>Final hidden states (B, T, H) and the router logits of every sparse layer in order (empty unless asked for).</summary>
public sealed record DecoderOutput(Tensor Hidden, IReadOnlyList<Tensor> RouterLogits);

/// <summary>The `model.` part of a causal LM checkpoint: embed_tokens, layers, norm.</summary>
public sealed class DecoderModel : nn.Module
{
    private readonly EmbeddingLayer embed_tokens;
    private readonly TorchSharp.Modules.ModuleList<DecoderLayer> layers;
    private readonly RmsNorm norm;
    private readonly ModelConfig config;
    private readonly RotaryEmbedding rope;
    private readonly RotaryEmbedding? localRope;

    public DecoderModel(ModelConfig config, ScalarType dtype) : base(nameof(DecoderModel))
    {
        this.config = config;
        embed_tokens = new EmbeddingLayer(config.VocabSize, config.HiddenSize, dtype);
        layers = new TorchSharp.Modules.ModuleList<DecoderLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(i => new DecoderLayer(config, i, dtype)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEps, config.NormStyle, dtype);
        rope = new RotaryEmbedding(config);
        // Gemma 3: sliding layers rotate with their own base and without the global layers' rope_scaling.
        if (config.LocalRopeTheta is { } local) localRope = new RotaryEmbedding(config with { RopeTheta = local, RopeScaling = null });
        RegisterComponents();
    }

    public EmbeddingLayer EmbedTokens => embed_tokens;
    public IReadOnlyList<DecoderLayer> Layers => layers.ToList();
    public RmsNorm FinalNorm => norm;

    /// <summary>Optional transform of the input embeddings during training (NEFTune noise).</summary>
    public Func<Tensor, Tensor>? EmbeddingTransform { get; set; }

    public LayerRunner RunLayer { get; set; } = (layer, hidden, inputs) => layer.Forward(hidden, inputs);

    public GroupRunner RunGroup { get; set; } = (_, compute, input, extra) => compute(input, extra);

    /// <summary>Final normalised hidden states (B, T, H).</summary>
    public Tensor Forward(ForwardBatch batch)
    {
        var output = Forward(batch, routerLogits: false);
        return output.Hidden;
    }

    /// <summary>Final normalised hidden states, and with <paramref name="routerLogits"/> each sparse layer's router logits.</summary>
    public DecoderOutput Forward(ForwardBatch batch, bool routerLogits)
    {
        using var scope = NewDisposeScope();
        var ids = batch.InputIds;
        long bsz = ids.shape[0], time = ids.shape[1], past = batch.Cache?.Length ?? 0;
        var x = RunGroup(embed_tokens, (t, _) => embed_tokens.call(t), ids);
        if (config.ScaleEmbeddings)
        {
            // transformers rounds sqrt(hidden) to the compute dtype before multiplying.
            x = x * tensor(Math.Sqrt(config.HiddenSize), x.dtype);
        }
        if (EmbeddingTransform is not null && training) x = EmbeddingTransform(x);
        var positions = batch.PositionIds ?? DefaultPositions(bsz, time, past, batch.SegmentIds, ids.device);
        var (cos, sin) = rope.Compute(positions, x.dtype);
        var (localCos, localSin) = localRope is null ? (null, null) : localRope.Compute(positions, x.dtype);
        // Plain causal rows need no mask tensor (SDPA's causal path); soft-capped attention is eager and needs one.
        bool plainCausal = past == 0 && batch.AttentionMask is null && batch.SegmentIds is null && config.AttnLogitSoftcapping is null;
        var full = plainCausal ? null : AttentionMask.Build(time, past, batch.AttentionMask, batch.SegmentIds, null, x.dtype, ids.device);
        var sliding = config.SlidingWindow is { } w && config.SlidingLayers.Any(s => s) && (!plainCausal || time > w)
            ? AttentionMask.Build(time, past, batch.AttentionMask, batch.SegmentIds, w, x.dtype, ids.device)
            : null;
        var inputs = new AttentionInputs(cos, sin, full, sliding, batch.Cache, localCos, localSin);
        var collected = new List<Tensor>();
        foreach (var layer in layers)
        {
            var (next, logits) = RunLayer(layer, x, inputs);
            x = next;
            if (routerLogits && logits is not null) collected.Add(logits.MoveToOuterDisposeScope());
        }
        batch.Cache?.Advance(time);
        return new DecoderOutput(RunGroup(norm, (t, _) => norm.call(t), x).MoveToOuterDisposeScope(), collected);
    }

    /// <summary>0..T-1 after the cache; with segment ids, positions restart at each document as packing expects.</summary>
    private static Tensor DefaultPositions(long bsz, long time, long past, Tensor? segmentIds, Device device)
    {
        if (segmentIds is null) return arange(past, past + time, int64, device).unsqueeze(0).expand(bsz, time);
        var seg = segmentIds.to(int64).cpu().data<long>().ToArray();
        var pos = new long[seg.Length];
        for (long b = 0; b < bsz; b++)
        for (long t = 0; t < time; t++)
        {
            long i = b * time + t;
            pos[i] = t > 0 && seg[i] == seg[i - 1] ? pos[i - 1] + 1 : 0;
        }
        return tensor(pos, [bsz, time], int64, device);
    }
}

/// <summary>Inputs of one forward pass. Labels are not here: losses are computed outside the model.</summary>
public sealed record ForwardBatch(Tensor InputIds, Tensor? AttentionMask = null, Tensor? PositionIds = null, Tensor? SegmentIds = null, KvCache? Cache = null);
