using SharpTune.Modeling;
using SharpTune.SafeTensors;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Peft.Quantization;

/// <summary>
/// Loads a model folder with its linear layers quantized tensor by tensor: each weight is read, quantized and dropped
/// before the next is read, and the layer's dense weight parameter is removed, so the full-precision model is never
/// resident. Every other parameter (embeddings, norms, biases, lm_head) is read straight into its storage in
/// <c>dtype</c>.
/// </summary>
public static class QuantizedModelLoader
{
    private const long ReadWindowBytes = 64L << 20;

    public static CausalLM Load(string modelDir, ScalarType dtype, QuantizationSettings settings)
    {
        settings.Validate();
        var config = ModelFamilies.LoadConfig(modelDir);
        var model = new CausalLM(config, dtype);
        try
        {
            using var checkpoint = SafeTensorsCheckpoint.Open(modelDir);
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
            LoadRemainingParameters(model, checkpoint, modelDir);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    public static QuantizedLinearWeight Quantize(Tensor weight, QuantizationSettings settings, ScalarType computeDType) =>
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

    /// <summary>
    /// Strict: every remaining parameter must be in the checkpoint. Where the stored dtype equals the parameter's the
    /// bytes go straight from the file into the parameter (no second copy of, say, a 1 GB embedding table).
    /// </summary>
    private static void LoadRemainingParameters(CausalLM model, SafeTensorsCheckpoint checkpoint, string source)
    {
        var parameters = model.named_parameters().ToList();
        var missing = parameters.Where(p => !checkpoint.Contains(p.name)).Select(p => p.name).ToList();
        if (missing.Count > 0)
            throw new InvalidInputException($"{source}: checkpoint lacks {missing.Count} tensor(s) the model needs, e.g. '{missing[0]}'");
        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            var entry = checkpoint.Info(name);
            if (!entry.Shape.AsSpan().SequenceEqual(parameter.shape) || SafeDTypes.ToScalarType(entry.DType) != parameter.dtype || !parameter.is_contiguous())
            {
                using var value = checkpoint.Load(name, parameter.shape, parameter.dtype);
                parameter.copy_(value);
                continue;
            }
            ReadInto(entry, parameter);
        }
    }

    private static void ReadInto(TensorEntry entry, Parameter parameter)
    {
        using var handle = File.OpenHandle(entry.FilePath, FileMode.Open, FileAccess.Read, FileShare.Read);
        using var detached = parameter.detach();
        using var flat = detached.view(-1);
        long elementSize = parameter.element_size();
        long windowElements = Math.Max(1, ReadWindowBytes / elementSize);
        long total = flat.numel();
        for (long first = 0; first < total; first += windowElements)
        {
            long count = Math.Min(windowElements, total - first);
            using var slice = flat.narrow(0, first, count);
            var destination = slice.bytes;
            long offset = entry.DataOffset + first * elementSize;
            while (destination.Length > 0)
            {
                int read = RandomAccess.Read(handle, destination, offset);
                if (read <= 0) throw new InvalidInputException($"{entry.FilePath}: tensor '{entry.Name}' is cut short (file ends at byte {offset})");
                destination = destination[read..];
                offset += read;
            }
        }
    }
}
