using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>The hidden activations named by config.json (hidden_act / hidden_activation), as transformers' ACT2FN defines them.</summary>
public static class Activations
{
    public static readonly IReadOnlyList<string> Names = ["silu", "swish", "gelu", "gelu_pytorch_tanh", "gelu_new", "gelu_fast", "relu"];

    public static bool IsKnown(string name) => Names.Contains(name);

    public static Tensor Apply(string name, Tensor x) => name switch
    {
        "silu" or "swish" => nn.functional.silu(x),
        "gelu" => x.gelu(),
        "gelu_pytorch_tanh" or "gelu_new" or "gelu_fast" => x.gelu(TorchSharp.Modules.GELU.Approximate.tanh),
        "relu" => nn.functional.relu(x),
        _ => throw new InvalidInputException($"hidden activation '{name}' is not supported; supported: {string.Join(", ", Names)}"),
    };
}
