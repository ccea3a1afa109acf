using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.SafeTensors;
using TorchSharp;
using SharpTune.Files;
using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>Reads and writes model folders in the Hugging Face layout (config.json, safetensors, generation_config.json).</summary>
public static class ModelIO
{
    /// <summary>Builds the model from config.json and copies every parameter from the checkpoint, one tensor at a time.</summary>
    public static CausalLM Load(string modelDir, ScalarType dtype = ScalarType.Float32, Device? device = null)
    {
        var config = ModelFamilies.LoadConfig(modelDir);
        var model = new CausalLM(config, dtype);
        // Move the still-uninitialised parameters first (their host pages were never touched), then copy each
        // checkpoint tensor straight into its device parameter: the host never holds the whole model.
        if (device is not null && device.type != DeviceType.CPU) model.to(device);
        using var checkpoint = SafeTensorsCheckpoint.Open(modelDir);
        LoadParameters(model, checkpoint, modelDir, strict: true);
        model.eval();
        return model;
    }

    /// <summary>
    /// Copies checkpoint tensors into the module's parameters by name. Strict: every parameter must be present.
    /// Returns the names it loaded.
    /// </summary>
    public static IReadOnlyList<string> LoadParameters(nn.Module module, SafeTensorsCheckpoint checkpoint, string source, bool strict, Func<string, string>? keyFor = null)
    {
        var parameters = module.named_parameters().ToList();
        var missing = parameters.Select(p => keyFor?.Invoke(p.name) ?? p.name).Where(k => !checkpoint.Contains(k)).ToList();
        if (strict && missing.Count > 0)
            throw new InvalidInputException($"{source}: checkpoint lacks {missing.Count} tensor(s) the model needs, e.g. '{missing[0]}'");
        var loaded = new List<string>();
        using var noGrad = no_grad();
        foreach (var (name, parameter) in parameters)
        {
            var key = keyFor?.Invoke(name) ?? name;
            if (!checkpoint.Contains(key)) continue;
            using var value = checkpoint.Load(key, parameter.shape, parameter.dtype);
            parameter.copy_(value);
            loaded.Add(name);
        }
        return loaded;
    }

    /// <summary>
    /// Writes config.json, model.safetensors (sharded above maxShardBytes) and generation_config.json, each atomically.
    /// </summary>
    public static void Save(CausalLM model, string outDir, ScalarType? dtype = null, long maxShardBytes = 5_000_000_000)
    {
        var target = dtype ?? model.DType;
        // Quantized layers have no weight parameter: saving would silently drop them.
        if (model.named_modules().FirstOrDefault(m => m.module is LinearLayer { FrozenWeight: not null }).name is { } quantized)
            throw new InvalidInputException($"{outDir}: the model holds quantized linear layers (e.g. '{quantized}'); save merged weights instead (merge_lora, or merge_into_original: PATH)");
        SaveTensors(model.Config, model.named_parameters().Select(p => KeyValuePair.Create(p.name, p.parameter.detach().to(target))), target, outDir, maxShardBytes);
    }

    /// <summary>Writes a model folder from named tensors (already in the target dtype; each is disposed after writing).</summary>
    public static void SaveTensors(ModelConfig config, IEnumerable<KeyValuePair<string, Tensor>> tensors, ScalarType dtype, string outDir, long maxShardBytes = 5_000_000_000)
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
        var json = (JsonObject)config.Json.DeepClone();
        json["torch_dtype"] = DTypeName(dtype);
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

    /// <summary>Random weights as transformers' _init_weights: N(0, initializer_range) matrices, zero biases, unit norms (zero for (1+w) norms).</summary>
    public static void InitializeRandom(CausalLM model, long seed)
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

    public static string DTypeName(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        ScalarType.Float64 => "float64",
        _ => throw new InvalidInputException($"dtype {dtype} cannot be saved as model weights; allowed: float32, bfloat16, float16"),
    };

    public static ScalarType ParseDType(string name, string key) => name switch
    {
        "float32" or "fp32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        "float16" or "fp16" => ScalarType.Float16,
        _ => throw new InvalidInputException($"{key}: '{name}' is not a dtype; allowed: float32, bfloat16, float16"),
    };

    /// <summary>Copies the tokenizer and generation files a model folder needs to be usable on its own (existing files kept).</summary>
    public static void CopyTokenizerFiles(string modelDir, string target)
    {
        string[] names = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "generation_config.json"];
        foreach (var name in names)
        {
            var source = Path.Combine(modelDir, name);
            if (File.Exists(source) && !File.Exists(Path.Combine(target, name))) File.Copy(source, Path.Combine(target, name));
        }
    }

    public static void WriteJsonAtomic(string path, JsonNode json) =>
        AtomicFile.WriteText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
