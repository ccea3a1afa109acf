using System.Text.Json.Nodes;
using SharpTune.Modeling;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Peft.Quantization;

/// <summary>
/// Merging a LoRA / DoRA adapter trained on a quantized base (QLoRA): into the dequantized base (what merge_lora does
/// with the model in memory) or into the original full-precision weights (merge_into_original).
/// </summary>
public static class QLoraMerge
{
    public const string DequantizedBaseWarning =
        "merging into the dequantized 4-bit/8-bit base: the merged weights differ from the original full-precision weights by the quantization error; set merge_into_original: PATH to merge into the original weights instead";

    /// <summary>
    /// Every tensor of a full-precision checkpoint for the model: quantized layers dequantized (float32) with their
    /// adapter folded in, all other tensors as <see cref="Lora.MergedTensors"/> gives them. Warns once through
    /// <paramref name="warn"/> when the model has quantized layers.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, Tensor>> MergedTensors(CausalLM model, ScalarType dtype, Action<string>? warn = null)
    {
        var quantized = QuantizedModelLoader.QuantizedLayers(model).ToList();
        if (quantized.Count > 0) warn?.Invoke(DequantizedBaseWarning);
        foreach (var tensor in Lora.MergedTensors(model, dtype)) yield return tensor;
        foreach (var (name, layer, _) in quantized)
        {
            using var merged = layer.Adapter is LoraAdapter adapter ? adapter.MergedWeight(layer) : layer.DenseWeight(ScalarType.Float32);
            yield return KeyValuePair.Create(name + ".weight", merged.to(dtype));
        }
    }

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
        var configPath = Path.Combine(adapterDir, "adapter_config.json");
        if (!File.Exists(configPath)) throw new InvalidInputException($"{adapterDir}: no adapter_config.json in this adapter folder");
        var settings = LoraSettings.FromAdapterConfig(JsonNode.Parse(File.ReadAllText(configPath))!.AsObject(), configPath);
        using var adapterFile = SafeTensorsCheckpoint.Open(Path.Combine(adapterDir, SafeTensorsCheckpoint.AdapterFileName));
        var adapterTensors = adapterFile.Names.ToDictionary(n => n, n => adapterFile.Load(n, ScalarType.Float32));
        try
        {
            var config = ModelFamilies.LoadConfig(originalModelDir);
            ModelIO.SaveTensors(config, MergeIntoOriginal(originalModelDir, adapterTensors, settings, dtype), dtype, outDir);
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
        var combined = weight + b.matmul(a) * settings.ScalingFor(module);
        if (adapter.TryGetValue(module + ".lora_magnitude_vector", out var magnitude))
            combined = combined * (magnitude.to(ScalarType.Float32) / combined.norm(1)).view(-1, 1);
        return combined.to(dtype).MoveToOuterDisposeScope();
    }
}
