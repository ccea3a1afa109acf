using SharpTune.Modeling;
using SharpTune.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Peft;

/// <summary>
/// Injects, loads and saves LoRA / DoRA adapters on a <see cref="CausalLM"/> with PEFT's file layout (a saved folder is
/// applied through <see cref="SavedLoraAdapter"/>, merged through <see cref="LoraMerge"/>).
/// </summary>
public static class Lora
{
    /// <summary>PEFT's prefix for adapter keys in adapter_model.safetensors.</summary>
    public const string FilePrefix = "base_model.model.";

    /// <summary>
    /// Attaches fresh adapters to every targeted linear layer (never lm_head unless named), freezes the base and
    /// leaves adapters and modules_to_save trainable. Returns the adapted layer names.
    /// </summary>
    public static IReadOnlyList<string> Inject(CausalLM model, LoraSettings settings, long seed)
    {
        manual_seed(seed);
        var adapted = new List<string>();
        foreach (var (name, module) in model.named_modules().ToList())
        {
            if (module is not LinearLayer linear || linear.Adapter is not null || !settings.Targets(name)) continue;
            if (name == "lm_head" && !settings.TargetModules.Contains("lm_head") && settings.TargetRegex is null) continue;
            linear.Attach(new LoraAdapter(linear, settings.RankFor(name), settings.ScalingFor(name), settings.Dropout, settings.UseDora));
            adapted.Add(name);
        }
        if (adapted.Count == 0)
        {
            var linearNames = model.named_modules().Where(m => m.module is LinearLayer).Select(m => m.name.Split('.')[^1]).Distinct();
            throw new InvalidInputException($"lora_target_modules: no linear layer matches [{string.Join(", ", settings.TargetModules)}{settings.TargetRegex}]; this model has: {string.Join(", ", linearNames)}");
        }
        SetTrainable(model, settings);
        return adapted;
    }

    /// <summary>
    /// lora_target_linear / PEFT's "all-linear": the distinct names of every linear layer except lm_head and the
    /// mixture-of-experts routers (`gate` of block_sparse_moe / mlp), which train only when named in lora_target_modules.
    /// </summary>
    public static IReadOnlyList<string> AllLinearNames(CausalLM model)
    {
        var routers = model.named_modules().Where(m => m.module is SparseMoeBlock).Select(m => m.name + ".gate").ToHashSet();
        return model.named_modules().Where(m => m.module is LinearLayer && m.name != "lm_head" && !routers.Contains(m.name))
            .Select(m => m.name.Split('.')[^1]).Distinct().ToList();
    }

    /// <summary>Only adapter tensors and modules_to_save train; every base weight is frozen.</summary>
    public static void SetTrainable(CausalLM model, LoraSettings settings)
    {
        foreach (var (name, parameter) in model.named_parameters())
            parameter.requires_grad = IsAdapterParameter(name) || IsModuleToSave(name, settings);
    }

    public static bool IsAdapterParameter(string name) =>
        name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal) || name.EndsWith(".lora_magnitude_vector", StringComparison.Ordinal);

    private static bool IsModuleToSave(string name, LoraSettings settings) =>
        settings.ModulesToSave.Any(m => name.StartsWith(m + ".", StringComparison.Ordinal) || name.Contains("." + m + ".", StringComparison.Ordinal));

    /// <summary>Copies adapter (and modules_to_save) tensors of a saved adapter into a model that already has the adapters injected.</summary>
    public static void LoadWeights(CausalLM model, string adapterDir)
    {
        using var checkpoint = SafeTensorsCheckpoint.Open(Path.Combine(adapterDir, SafeTensorsCheckpoint.AdapterFileName));
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToHashSet();
        var missing = trainable.Where(n => !checkpoint.Contains(FilePrefix + n)).ToList();
        if (missing.Count > 0)
            throw new InvalidInputException($"{adapterDir}: adapter_model.safetensors lacks '{FilePrefix + missing[0]}' ({missing.Count} adapter tensor(s) missing)");
        using var noGrad = no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (!trainable.Contains(name)) continue;
            using var value = checkpoint.Load(FilePrefix + name, parameter.shape, parameter.dtype);
            parameter.copy_(value);
        }
    }

    /// <summary>Writes adapter_model.safetensors (adapter tensors + modules_to_save, PEFT key names) and adapter_config.json.</summary>
    public static void Save(CausalLM model, LoraSettings settings, string outDir)
    {
        Directory.CreateDirectory(outDir);
        var tensors = model.named_parameters()
            .Where(p => IsAdapterParameter(p.name) || IsModuleToSave(p.name, settings))
            .Select(p => KeyValuePair.Create(FilePrefix + p.name, (Tensor)p.parameter.detach()))
            .ToList();
        SafeTensorsWriter.Save(Path.Combine(outDir, SafeTensorsCheckpoint.AdapterFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        ModelIO.WriteJsonAtomic(Path.Combine(outDir, "adapter_config.json"), settings.ToAdapterConfig());
    }
}
