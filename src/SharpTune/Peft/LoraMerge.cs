using SharpTune.Modeling;
using SharpTune.Modeling.Quantization;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Peft;

/// <summary>
/// Folding LoRA / DoRA adapters into their base weights, what PEFT's merge_and_unload does: of a model in memory (a
/// quantized base, QLoRA, is merged into its dequantized weights) or streamed over the original full-precision
/// checkpoint (merge_into_original). One formula, <see cref="Merge"/>, serves every case.
/// </summary>
public static class LoraMerge
{
    public const string DequantizedBaseWarning =
        "merging into the dequantized 4-bit/8-bit base: the merged weights differ from the original full-precision weights by the quantization error; set merge_into_original: PATH to merge into the original weights instead";

    /// <summary>W + s·B·A: the merged LoRA weight, and DoRA's direction before it is renormalised.</summary>
    public static Tensor Combined(Tensor weight, Tensor a, Tensor b, double scaling) => weight + b.matmul(a) * scaling;

    /// <summary>W' = W + s·B·A (LoRA), or m · (W + s·B·A) / ‖W + s·B·A‖ per output row (DoRA, <paramref name="magnitude"/> given).</summary>
    public static Tensor Merge(Tensor weight, Tensor a, Tensor b, double scaling, Tensor? magnitude)
    {
        var combined = Combined(weight, a, b, scaling);
        return magnitude is null ? combined : combined * (magnitude / combined.norm(1)).view(-1, 1);
    }

    /// <summary>
    /// Every tensor of a full-precision checkpoint for the model, under the plain checkpoint names, in
    /// <paramref name="dtype"/>: each adapted layer's weight with its adapter folded in (float32 math), quantized layers
    /// dequantized (and merged when adapted), adapter tensors left out. Warns once through <paramref name="warn"/> when
    /// the model has quantized layers.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> MergedTensors(CausalLM model, ScalarType dtype, Action<string>? warn = null)
    {
        var quantized = QuantizedLoading.QuantizedLayers(model).ToList();
        if (quantized.Count > 0) warn?.Invoke(DequantizedBaseWarning);
        var adapted = model.named_modules()
            .Where(m => m.module is LinearLayer { Adapter: LoraAdapter })
            .ToDictionary(m => m.name + ".weight", m => (LinearLayer)m.module);
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (Lora.IsAdapterParameter(name)) continue;
            if (adapted.TryGetValue(name, out var layer))
            {
                using var merged = MergedWeight(layer);
                yield return KeyValuePair.Create(name, merged.to(dtype));
            }
            else
            {
                yield return KeyValuePair.Create(name, parameter.detach().to(dtype));
            }
        }
        // Quantized layers hold no weight parameter: their (merged) weight comes from the quantized state.
        foreach (var (name, layer, _) in quantized)
        {
            using var merged = MergedWeight(layer);
            yield return KeyValuePair.Create(name + ".weight", merged.to(dtype));
        }
    }

    /// <summary>A layer's base weight with its adapter folded in, or the (dequantized) base weight alone, float32.</summary>
    private static Tensor MergedWeight(LinearLayer layer) =>
        layer.Adapter is LoraAdapter adapter ? adapter.MergedWeight(layer) : layer.DenseWeight(ScalarType.Float32);

    /// <summary>
    /// Streams the original checkpoint tensor by tensor and folds the adapter into each targeted linear weight:
    /// W + s·B·A, or for DoRA m · (W + s·B·A) / ‖W + s·B·A‖ per output row, all in float32, then cast to
    /// <paramref name="dtype"/>. Adapter keys may carry PEFT's base_model.model. prefix or not; modules_to_save
    /// tensors in the adapter replace the original ones.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> MergeIntoOriginal(string originalModelDir, IReadOnlyDictionary<string, Tensor> adapterTensors, LoraSettings settings, ScalarType dtype)
    {
        var adapter = adapterTensors.ToDictionary(
            kv => kv.Key.StartsWith(Lora.FilePrefix, StringComparison.Ordinal) ? kv.Key[Lora.FilePrefix.Length..] : kv.Key,
            kv => kv.Value);
        var adaptedModules = adapter.Keys
            .Where(k => k.EndsWith(".lora_A.weight", StringComparison.Ordinal))
            .Select(k => k[..^".lora_A.weight".Length])
            .ToHashSet();
        using var checkpoint = SafeTensorsCheckpoint.Open(originalModelDir);
        foreach (var module in adaptedModules)
        {
            if (!checkpoint.Contains(module + ".weight"))
                throw new InvalidInputException($"{originalModelDir}: the adapter has '{module}.lora_A.weight' but the original model has no '{module}.weight'");
            if (!adapter.ContainsKey(module + ".lora_B.weight"))
                throw new InvalidInputException($"adapter: '{module}.lora_A.weight' has no matching '{module}.lora_B.weight'");
        }
        foreach (var name in checkpoint.Names)
        {
            if (adapter.TryGetValue(name, out var saved) && !Lora.IsAdapterParameter(name))
            {
                yield return KeyValuePair.Create(name, saved.to(dtype));   // modules_to_save
                continue;
            }
            var module = name.EndsWith(".weight", StringComparison.Ordinal) ? name[..^".weight".Length] : null;
            if (module is null || !adaptedModules.Contains(module))
            {
                yield return KeyValuePair.Create(name, checkpoint.Load(name, dtype));
                continue;
            }
            yield return KeyValuePair.Create(name, MergeOne(checkpoint, name, module, adapter, settings, dtype));
        }
    }

    /// <summary>Reads adapter_config.json + adapter_model.safetensors and writes the merged original model folder.</summary>
    public static void MergeIntoOriginal(string originalModelDir, string adapterDir, string outDir, ScalarType dtype)
    {
        var saved = SavedLoraAdapter.Open(adapterDir);
        using var adapterFile = SafeTensorsCheckpoint.Open(saved.WeightsFile);
        var adapterTensors = adapterFile.Names.ToDictionary(n => n, n => adapterFile.Load(n, ScalarType.Float32));
        try
        {
            var config = ModelFamilies.LoadConfig(originalModelDir);
            ModelIO.SaveTensors(config, MergeIntoOriginal(originalModelDir, adapterTensors, saved.Settings, dtype), dtype, outDir);
        }
        finally
        {
            foreach (var t in adapterTensors.Values) t.Dispose();
        }
    }

    private static Tensor MergeOne(SafeTensorsCheckpoint checkpoint, string name, string module, Dictionary<string, Tensor> adapter, LoraSettings settings, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weight = checkpoint.Load(name, ScalarType.Float32);
        var a = adapter[module + ".lora_A.weight"].to(ScalarType.Float32);
        var b = adapter[module + ".lora_B.weight"].to(ScalarType.Float32);
        if (a.shape[1] != weight.shape[1] || b.shape[0] != weight.shape[0] || a.shape[0] != b.shape[1])
            throw new InvalidInputException($"adapter: '{module}' lora_A {string.Join('x', a.shape)} / lora_B {string.Join('x', b.shape)} do not fit the weight {string.Join('x', weight.shape)}");
        var magnitude = adapter.TryGetValue(module + ".lora_magnitude_vector", out var stored) ? stored.to(ScalarType.Float32) : null;
        return Merge(weight, a, b, settings.ScalingFor(module), magnitude).to(dtype).MoveToOuterDisposeScope();
    }
}
