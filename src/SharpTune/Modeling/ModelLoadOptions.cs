using SharpTune.Modeling.Quantization;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>What <see cref="ModelLoader"/> makes of a model folder besides reading it.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>dtype of the weights (and of the quantized layers' matmul unless the quantization names its own).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>Where the model runs; null: the CPU.</summary>
    public Device? Device { get; init; }
    /// <summary>Linear layers held 4-bit / 8-bit (load_in_4bit / load_in_8bit); null: full precision.</summary>
    public QuantizationSettings? Quantization { get; init; }
    /// <summary>A saved adapter applied on top of the base before the model moves to its device; null: none.</summary>
    public ISavedAdapter? Adapter { get; init; }
}

/// <summary>
/// A trained add-on stored beside a base model (a PEFT adapter folder). Declared here so that the one loader can take
/// it; implemented by Peft, the floor above, which owns the adapter code.
/// </summary>
public interface ISavedAdapter
{
    /// <summary>Attaches the adapter to the freshly loaded base (still on the CPU unless the base was loaded elsewhere) and loads its weights.</summary>
    void ApplyTo(CausalLM model);
}
