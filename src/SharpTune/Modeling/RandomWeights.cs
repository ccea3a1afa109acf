using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>The weights of a model that starts from nothing (init-model, pretraining from scratch, benches, tests).</summary>
public static class RandomWeights
{
    /// <summary>Random weights as transformers' _init_weights: N(0, initializer_range) matrices, zero biases, unit norms (zero for (1+w) norms).</summary>
    public static void Initialize(CausalLM model, long seed)
    {
        var generator = new Generator((ulong)seed);
        double std = model.Config.InitializerRange;
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal))
                parameter.fill_(model.Config.NormStyle == NormStyle.OnePlusWeight ? 0.0 : 1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal))
                parameter.zero_();
            else
                parameter.normal_(0, std, generator);
        }
    }
}
