using SharpTune.SafeTensors;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Modeling.Quantization;

/// <summary>
/// The quantized half of <see cref="ModelLoader"/>: the linear layers are quantized tensor by tensor, each weight read,
/// quantized and dropped before the next is read, and the layer's dense weight parameter removed, so the
/// full-precision model is never resident. Every other parameter (embeddings, norms, biases, lm_head) is read straight
/// into its storage in <c>dtype</c>.
/// </summary>
public static class QuantizedLoading
{
    /// <summary>Quantizes every linear layer <paramref name="settings"/> does not skip, then loads the remaining parameters.</summary>
    internal static void QuantizeLinearLayers(CausalLM model, SafeTensorsCheckpoint checkpoint, string modelDir, ScalarType dtype, QuantizationSettings settings)
    {
        var computeDType = settings.ComputeDType ?? dtype;
        foreach (var (name, module) in model.named_modules().ToList())
        {
            if (module is not LinearLayer linear || settings.Skips(name)) continue;
            var key = name + ".weight";
            if (!checkpoint.Contains(key))
                throw new InvalidInputException($"{modelDir}: checkpoint lacks '{key}', a linear weight the model needs");
            // Free the uninitialised dense parameter first: its pages were never touched, but its address space was.
            using var full = checkpoint.Load(key, [linear.OutFeatures, linear.InFeatures], ScalarType.Float32);
            linear.ReplaceWeight(Quantize(full, settings, computeDType));
        }
    }

    private static QuantizedLinearWeight Quantize(Tensor weight, QuantizationSettings settings, ScalarType computeDType) =>
        settings.Kind == QuantizationKind.EightBit
            ? Int8LinearWeight.Quantize(weight, computeDType)
            : FourBitLinearWeight.Quantize(weight, settings.QuantType, settings.BlockSize, settings.DoubleQuant, computeDType);

    /// <summary>The quantized linear layers of a model, by module name.</summary>
    public static IEnumerable<(string Name, LinearLayer Layer, QuantizedLinearWeight Weight)> QuantizedLayers(nn.Module model) =>
        model.named_modules()
            .Where(m => m.module is LinearLayer { FrozenWeight: QuantizedLinearWeight })
            .Select(m => (m.name, (LinearLayer)m.module, (QuantizedLinearWeight)((LinearLayer)m.module).FrozenWeight!));

    /// <summary>Bytes resident for the model's weights: parameters, buffers and quantized weights.</summary>
    public static long ResidentBytes(nn.Module model) =>
        model.parameters().Sum(p => p.numel() * p.element_size())
        + model.buffers().Sum(b => b.numel() * b.element_size())
        + QuantizedLayers(model).Sum(q => q.Weight.ResidentBytes);
}
