using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// Next-token cross-entropy over labelled tokens, computed chunk-wise from the hidden states. On mixture-of-experts
/// models with output_router_logits (the config key, else config.json's), training adds router_aux_loss_coef × the
/// load-balancing loss, weighted by the batch's tokens so that one micro-batch gives transformers' mean + coef · aux;
/// evaluation keeps the plain cross-entropy, so its perplexity stays one.
/// </summary>
public sealed class CausalLmObjective(int chunkTokens = ChunkedCrossEntropy.DefaultChunkTokens, bool? outputRouterLogits = null) : ITrainingObjective
{
    public bool LossIsTokenNll => true;

    public long Units(LabeledBatch batch) => batch.TrainedTokens;

    public ObjectiveOutput Compute(CausalLM model, LabeledBatch batch)
    {
        using var scope = NewDisposeScope();
        var moe = model.Config.Moe;
        if (outputRouterLogits == true && moe is null)
            throw new InvalidInputException($"output_router_logits: true, but model_type '{model.Config.ModelType}' has no mixture-of-experts layers");
        bool aux = model.training && moe is not null && (outputRouterLogits ?? moe.OutputRouterLogits);
        if (!aux)
        {
            var sum = ChunkedCrossEntropy.Sum(model, model.Hidden(batch.Inputs), batch.Labels, chunkTokens);
            return new ObjectiveOutput(sum.MoveToOuterDisposeScope(), new Dictionary<string, Tensor>());
        }
        var output = model.HiddenAndRouterLogits(batch.Inputs);
        var crossEntropy = ChunkedCrossEntropy.Sum(model, output.Hidden, batch.Labels, chunkTokens);
        var balance = LoadBalancingLoss.Compute(output.RouterLogits, moe!.NumExperts, moe.TopK, batch.Inputs.AttentionMask);
        var total = crossEntropy + balance.to(crossEntropy.dtype) * (moe.RouterAuxLossCoef * Units(batch));
        return new ObjectiveOutput(total.MoveToOuterDisposeScope(), new Dictionary<string, Tensor> { ["aux_loss"] = balance.detach().MoveToOuterDisposeScope() });
    }
}
