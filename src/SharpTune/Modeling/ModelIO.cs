using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.SafeTensors;
using SharpTune.Files;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>Writes model folders in the Hugging Face layout (config.json, safetensors, generation_config.json).</summary>
public static class ModelIO
{
    /// <summary>transformers' default max_shard_size ("5GB"), the default of the saves here.</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>
    /// Writes config.json, model.safetensors (sharded above maxShardBytes) and generation_config.json, each atomically.
    /// </summary>
    public static void Save(CausalLM model, string outDir, ScalarType? dtype = null, long maxShardBytes = DefaultMaxShardBytes)
    {
        var target = dtype ?? model.DType;
        // Quantized layers have no weight parameter: saving would silently drop them.
        if (model.named_modules().FirstOrDefault(m => m.module is LinearLayer { FrozenWeight: not null }).name is { } quantized)
            throw new InvalidInputException($"{outDir}: the model holds quantized linear layers (e.g. '{quantized}'); save merged weights instead (merge_lora, or merge_into_original: PATH)");
        SaveTensors(model.Config, model.named_parameters().Select(p => KeyValuePair.Create(p.name, p.parameter.detach().to(target))), target, outDir, maxShardBytes);
    }

    /// <summary>Writes a model folder from named tensors (already in the target dtype; each is disposed after writing).</summary>
    public static void SaveTensors(ModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> tensors, ScalarType dtype, string outDir, long maxShardBytes = DefaultMaxShardBytes)
    {
        Directory.CreateDirectory(outDir);
        var list = tensors.ToList();
        try
        {
            SafeTensorsWriter.SaveSharded(outDir, list, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
        }
        finally
        {
            foreach (var t in list) t.Value.Dispose();
        }
        WriteConfigs(config, dtype, outDir);
    }

    /// <summary>
    /// <see cref="SaveTensors"/> from tensors produced one at a time as the writer reaches them (in
    /// <see cref="SafeTensorsWriter.StreamOrder"/>, each disposed once written): the same folder, byte for byte, while
    /// at most one tensor is held (ZeRO-3 gathers each parameter from its owner only for its turn).
    /// </summary>
    public static void SaveStreamed(ModelConfig config, IReadOnlyList<StreamedTensor> tensors, ScalarType dtype, string outDir, long maxShardBytes = DefaultMaxShardBytes)
    {
        Directory.CreateDirectory(outDir);
        SafeTensorsWriter.SaveShardedStreamed(outDir, tensors, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
        WriteConfigs(config, dtype, outDir);
    }

    private static void WriteConfigs(ModelConfig config, ScalarType dtype, string outDir)
    {
        var json = (JsonObject)config.Json.DeepClone();
        json["torch_dtype"] = PrecisionPolicy.DTypeName(dtype);
        WriteJsonAtomic(Path.Combine(outDir, "config.json"), json);
        WriteGenerationConfig(outDir, config);
    }

    public static void WriteGenerationConfig(string outDir, ModelConfig config)
    {
        var generation = new JsonObject { ["_from_model_config"] = true };
        if (config.BosTokenId is { } bos) generation["bos_token_id"] = bos;
        if (config.EosTokenIds.Count == 1) generation["eos_token_id"] = config.EosTokenIds[0];
        else if (config.EosTokenIds.Count > 1) generation["eos_token_id"] = new JsonArray(config.EosTokenIds.Select(e => (JsonNode)e).ToArray());
        if (config.PadTokenId is { } pad) generation["pad_token_id"] = pad;
        WriteJsonAtomic(Path.Combine(outDir, "generation_config.json"), generation);
    }

    public static void WriteJsonAtomic(string path, JsonNode json) =>
        AtomicFile.WriteText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
