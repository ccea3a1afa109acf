using SharpTune.Modeling.Quantization;
using SharpTune.SafeTensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// The one way a model folder (config.json + safetensors) becomes a <see cref="CausalLM"/>: in a dtype, on a device,
/// with its linear layers optionally quantized and a saved adapter optionally applied. Every command loads through it.
/// </summary>
public static class ModelLoader
{
    private const long ReadWindowBytes = 64L << 20;

    /// <summary>Builds the model from config.json and copies every parameter from the checkpoint, one tensor at a time; returned in eval mode.</summary>
    public static CausalLM Load(string modelDir, ModelLoadOptions? options = null)
    {
        options ??= new ModelLoadOptions();
        var device = options.Device ?? CPU;
        if (options.Quantization is { } quantization)
        {
            quantization.Validate();
            if (device.type != DeviceType.CPU)
                throw new InvalidInputException($"load_in_4bit / load_in_8bit: the quantized kernels of this build run on the CPU only; use device: cpu, or LoRA on the bf16 model (adapter: lora) on {Native.ComputeDevice.Describe(device)}");
        }
        var model = new CausalLM(ModelFamilies.LoadConfig(modelDir), options.DType);
        try
        {
            // Without an adapter, move the still-uninitialised parameters first (their host pages were never touched), then
            // copy each checkpoint tensor straight into its device parameter: the host never holds the whole model. An
            // adapter is built on the CPU beside a CPU base (DoRA's magnitude is computed from the base weight), then both move.
            bool deviceFirst = device.type != DeviceType.CPU && options.Adapter is null;
            if (deviceFirst) model.to(device);
            using (var checkpoint = SafeTensorsCheckpoint.Open(modelDir))
            {
                if (options.Quantization is { } settings) QuantizedLoading.QuantizeLinearLayers(model, checkpoint, modelDir, options.DType, settings);
                LoadParameters(model, checkpoint, modelDir);
            }
            options.Adapter?.ApplyTo(model);
            if (device.type != DeviceType.CPU && !deviceFirst) model.to(device);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        // Last, so that an applied adapter's dropout is off too.
        model.eval();
        return model;
    }

    /// <summary>
    /// Copies checkpoint tensors into the module's parameters by name. Strict: every parameter must be present. Where
    /// the stored dtype and shape equal a CPU parameter's, the bytes go straight from the file into the parameter (no
    /// second copy of, say, a 1 GB embedding table).
    /// </summary>
    public static void LoadParameters(nn.Module module, SafeTensorsCheckpoint checkpoint, string source)
    {
        var parameters = module.named_parameters().ToList();
        var missing = parameters.Where(p => !checkpoint.Contains(p.name)).Select(p => p.name).ToList();
        if (missing.Count > 0)
            throw new InvalidInputException($"{source}: checkpoint lacks {missing.Count} tensor(s) the model needs, e.g. '{missing[0]}'");
        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            var entry = checkpoint.Info(name);
            if (parameter.device_type == DeviceType.CPU && parameter.is_contiguous() && entry.Shape.AsSpan().SequenceEqual(parameter.shape)
                && SafeDTypes.ToScalarType(entry.DType) == parameter.dtype)
            {
                ReadInto(entry, parameter);
                continue;
            }
            using var value = checkpoint.Load(name, parameter.shape, parameter.dtype);
            parameter.copy_(value);
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
