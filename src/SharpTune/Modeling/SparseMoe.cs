using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// Mixture-of-experts MLP (Mixtral's block_sparse_moe, Qwen3-MoE's mlp): a linear router `gate` scores the experts,
/// softmax in float32, the top-k experts per token run and their outputs are summed with the (optionally renormalised)
/// top-k probabilities. Gradients reach the router through those weights, not through the choice of experts.
/// Batched by expert: the (token, slot) assignments are sorted by expert, each expert runs once on its rows
/// (one GEMM per projection), and one index_add scatters the weighted outputs back to their tokens.
/// </summary>
public sealed class SparseMoeBlock : nn.Module
{
    private readonly LinearLayer gate;
    private readonly TorchSharp.Modules.ModuleList<GatedMlp> experts;
    private readonly MoeConfig moe;

    public SparseMoeBlock(ModelConfig config, ScalarType dtype) : base(nameof(SparseMoeBlock))
    {
        moe = config.Moe ?? throw new InvalidOperationException("SparseMoeBlock needs a mixture-of-experts config");
        gate = new LinearLayer(config.HiddenSize, moe.NumExperts, false, dtype);
        bool mixtralNames = moe.Layout == MoeLayout.Mixtral;
        experts = new TorchSharp.Modules.ModuleList<GatedMlp>(Enumerable.Range(0, moe.NumExperts)
            .Select(_ => new GatedMlp(config.HiddenSize, moe.ExpertIntermediateSize, false, config.HiddenAct, dtype, mixtralNames)).ToArray());
        RegisterComponents();
    }

    /// <summary>(B, T, H) → the block's output (B, T, H) and the router logits (B·T, E), which the load-balancing loss reads.</summary>
    public (Tensor Output, Tensor RouterLogits) Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long hidden = x.shape[^1];
        var flat = x.reshape(-1, hidden);                                     // (N, H)
        if (training && moe.JitterNoise > 0)
            flat = flat * empty_like(flat).uniform_(1.0 - moe.JitterNoise, 1.0 + moe.JitterNoise);
        var logits = gate.call(flat);                                         // (N, E)
        var probs = logits.softmax(1, float32);
        var (weights, chosen) = probs.topk(moe.TopK, -1);                     // (N, k) each
        if (moe.NormTopKProb) weights = weights / weights.sum(-1, keepdim: true);
        weights = weights.to(x.dtype);

        // Group the N·k assignments by expert (a token appears at most once per expert, so order within one is free).
        var slots = chosen.reshape(-1);                                       // (N·k)
        var order = slots.argsort(0);
        var tokenOf = order.div(moe.TopK, rounding_mode: RoundingMode.floor); // token index of each sorted slot
        var weightOf = weights.reshape(-1).index_select(0, order);
        // One host read per layer: how many rows each expert gets decides the GEMM shapes.
        var counts = slots.bincount(null, moe.NumExperts).cpu().data<long>().ToArray();
        var outputs = new List<Tensor>(moe.NumExperts);
        long start = 0;
        for (int e = 0; e < moe.NumExperts; e++)
        {
            if (counts[e] == 0) continue;
            var rows = tokenOf.narrow(0, start, counts[e]);
            outputs.Add(experts[e].call(flat.index_select(0, rows)));         // (n_e, H)
            start += counts[e];
        }
        var weighted = cat(outputs, 0) * weightOf.unsqueeze(1);               // (N·k, H), in sorted order
        var output = zeros_like(flat).index_add(0, tokenOf, weighted, 1);
        return (output.view(x.shape).MoveToOuterDisposeScope(), logits.MoveToOuterDisposeScope());
    }
}
