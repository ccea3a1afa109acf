using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// The Switch-Transformer load-balancing loss of Mixtral and Qwen3-MoE, as transformers' load_balancing_loss_func
/// computes it: over the router logits of every sparse layer together, E · Σ_e f_e · P_e, where f_e is the share of
/// (token, top-k slot) choices that went to expert e (per slot, so a (k, E) table) and P_e the mean router
/// probability of e. With an attention mask both averages skip padding. Only P carries gradient.
/// </summary>
public static class LoadBalancingLoss
{
    /// <param name="routerLogits">Per sparse layer (B·T, E), rows in (batch, time) order.</param>
    /// <param name="attentionMask">(B, T) 1 = real token, or null to average over every row.</param>
    public static Tensor Compute(IReadOnlyList<Tensor> routerLogits, int numExperts, int topK, Tensor? attentionMask)
    {
        if (routerLogits.Count == 0) throw new InvalidOperationException("load-balancing loss needs the router logits of at least one sparse layer");
        using var scope = NewDisposeScope();
        var logits = cat(routerLogits.ToArray(), 0);                          // (L·B·T, E)
        var probs = logits.softmax(-1);
        var chosen = probs.topk(topK, -1).indexes;                            // (L·B·T, k)
        var expertMask = nn.functional.one_hot(chosen, numExperts).to(float32); // (L·B·T, k, E)
        Tensor tokensPerExpert, probPerExpert;
        if (attentionMask is null)
        {
            tokensPerExpert = expertMask.mean([0]);                           // (k, E)
            probPerExpert = probs.mean([0]);                                  // (E)
        }
        else
        {
            long batch = attentionMask.shape[0], time = attentionMask.shape[1];
            long layers = logits.shape[0] / (batch * time);
            if (layers * batch * time != logits.shape[0])
                throw new InvalidOperationException($"router logits have {logits.shape[0]} rows, not a multiple of the attention mask's {batch}×{time}");
            var rowMask = attentionMask.to(float32).to(logits.device).unsqueeze(0).expand(layers, batch, time).reshape(-1);   // (L·B·T)
            tokensPerExpert = (expertMask * rowMask.view(-1, 1, 1)).sum([0]) / rowMask.sum();
            probPerExpert = (probs * rowMask.view(-1, 1).to(probs.dtype)).sum([0]) / rowMask.sum().to(probs.dtype);
        }
        var loss = (tokensPerExpert * probPerExpert.unsqueeze(0)).sum() * numExperts;
        return loss.MoveToOuterDisposeScope();
    }
}
