using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// A decoder-only language model in the Hugging Face layout: `model.*` and `lm_head.weight` (absent when the
/// embeddings are tied, as transformers saves it). Parameter names equal checkpoint keys.
/// </summary>
public sealed class CausalLM : nn.Module
{
    private readonly DecoderModel model;
    private readonly LinearLayer? lm_head;

    public CausalLM(ModelConfig config, ScalarType dtype) : base(nameof(CausalLM))
    {
        Config = config;
        DType = dtype;
        model = new DecoderModel(config, dtype);
        lm_head = config.TieWordEmbeddings ? null : new LinearLayer(config.HiddenSize, config.VocabSize, false, dtype);
        RegisterComponents();
    }

    public ModelConfig Config { get; }
    public ScalarType DType { get; }
    public DecoderModel Model => model;

    /// <summary>Where the weights live; inputs are moved here and small results (last-position logits) read back.</summary>
    public Device Device => model.EmbedTokens.Weight.device;

    /// <summary>The output projection weight (V, H): lm_head, or the embedding table when tied.</summary>
    public Tensor OutputWeight => lm_head?.Weight ?? model.EmbedTokens.Weight;

    /// <summary>The module holding <see cref="OutputWeight"/> (the parameter group the output projection runs as).</summary>
    public nn.Module OutputModule => (nn.Module?)lm_head ?? model.EmbedTokens;

    /// <summary>lm_head; null when the embeddings are tied.</summary>
    public LinearLayer? LmHead => lm_head;

    /// <summary>Final hidden states (B, T, H) in the compute dtype.</summary>
    public Tensor Hidden(ForwardBatch batch) => model.Forward(batch);

    /// <summary>Final hidden states and each mixture-of-experts layer's router logits (B·T, E), for the load-balancing loss.</summary>
    public DecoderOutput HiddenAndRouterLogits(ForwardBatch batch) => model.Forward(batch, routerLogits: true);

    /// <summary>float32 logits for hidden states of any leading shape, with Gemma2's final soft-capping.</summary>
    public Tensor Logits(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var logits = model.RunGroup(OutputModule, (h, _) => lm_head is null ? nn.functional.linear(h, model.EmbedTokens.Weight) : lm_head.call(h), hidden).to(float32);
        if (Config.FinalLogitSoftcapping is { } cap) logits = (logits / cap).tanh() * cap;
        return logits.MoveToOuterDisposeScope();
    }

    /// <summary>(B, T, V) float32 logits.</summary>
    public Tensor Forward(ForwardBatch batch)
    {
        using var scope = NewDisposeScope();
        return Logits(Hidden(batch)).MoveToOuterDisposeScope();
    }
}
