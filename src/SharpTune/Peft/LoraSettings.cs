using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace SharpTune.Peft;

/// <summary>
/// A LoRA / DoRA adapter's hyper-parameters, as PEFT's LoraConfig (adapter_config.json) names them.
/// TargetModules are module-name suffixes (q_proj matches model.layers.0.self_attn.q_proj); TargetRegex, when set,
/// must match the whole module name (PEFT's str target_modules).
/// </summary>
public sealed record LoraSettings
{
    public int R { get; init; } = 8;
    public double Alpha { get; init; } = 8;
    public double Dropout { get; init; }
    public IReadOnlyList<string> TargetModules { get; init; } = [];
    public string? TargetRegex { get; init; }
    public bool UseRsLora { get; init; }
    public bool UseDora { get; init; }
    public IReadOnlyList<string> ModulesToSave { get; init; } = [];
    /// <summary>Per-module rank / alpha overrides (PEFT rank_pattern / alpha_pattern), keyed by name suffix or regex.</summary>
    public IReadOnlyDictionary<string, int> RankPattern { get; init; } = new Dictionary<string, int>();
    public IReadOnlyDictionary<string, double> AlphaPattern { get; init; } = new Dictionary<string, double>();
    public string BaseModelNameOrPath { get; init; } = "";

    public int RankFor(string module) => Pattern(RankPattern, module) ?? R;
    public double AlphaFor(string module) => Pattern(AlphaPattern, module) ?? Alpha;

    public double ScalingFor(string module)
    {
        int r = RankFor(module);
        double alpha = AlphaFor(module);
        return UseRsLora ? alpha / Math.Sqrt(r) : alpha / r;
    }

    public bool Targets(string moduleName)
    {
        if (TargetRegex is not null) return Regex.IsMatch(moduleName, "^(?:" + TargetRegex + ")$");
        return TargetModules.Any(t => moduleName == t || moduleName.EndsWith("." + t, StringComparison.Ordinal));
    }

    private static T? Pattern<T>(IReadOnlyDictionary<string, T> patterns, string module) where T : struct
    {
        foreach (var (key, value) in patterns)
            if (Regex.IsMatch(module, "^(.*\\.)?" + key + "$")) return value;
        return null;
    }

    public static LoraSettings FromAdapterConfig(JsonObject json, string source)
    {
        string Text(string key) => json[key]?.ToString() ?? "";
        if (json["peft_type"] is { } type && type.ToString() != "LORA")
            throw new InvalidInputException($"{source}: peft_type '{type}' is not supported; supported: LORA");
        if (json["fan_in_fan_out"]?.GetValue<bool>() == true)
            throw new InvalidInputException($"{source}: fan_in_fan_out: true is not supported (only nn.Linear-style weights)");
        if (json["bias"] is { } bias && bias.ToString() != "none")
            throw new InvalidInputException($"{source}: bias '{bias}' is not supported; supported: none");
        var targets = json["target_modules"];
        return new LoraSettings
        {
            R = json["r"]?.GetValue<int>() ?? 8,
            Alpha = json["lora_alpha"]?.GetValue<double>() ?? 8,
            Dropout = json["lora_dropout"]?.GetValue<double>() ?? 0,
            TargetModules = targets is JsonArray list ? list.Select(n => n!.ToString()).ToArray() : [],
            TargetRegex = targets is JsonValue value ? value.ToString() : null,
            UseRsLora = json["use_rslora"]?.GetValue<bool>() ?? false,
            UseDora = json["use_dora"]?.GetValue<bool>() ?? false,
            ModulesToSave = json["modules_to_save"] is JsonArray save ? save.Select(n => n!.ToString()).ToArray() : [],
            RankPattern = json["rank_pattern"] is JsonObject ranks ? ranks.ToDictionary(p => p.Key, p => p.Value!.GetValue<int>()) : new Dictionary<string, int>(),
            AlphaPattern = json["alpha_pattern"] is JsonObject alphas ? alphas.ToDictionary(p => p.Key, p => p.Value!.GetValue<double>()) : new Dictionary<string, double>(),
            BaseModelNameOrPath = Text("base_model_name_or_path"),
        };
    }

    /// <summary>adapter_config.json as PEFT writes it, so `PeftModel.from_pretrained` loads the folder.</summary>
    public JsonObject ToAdapterConfig() => new()
    {
        ["alpha_pattern"] = new JsonObject(AlphaPattern.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        ["auto_mapping"] = null,
        ["base_model_name_or_path"] = BaseModelNameOrPath,
        ["bias"] = "none",
        ["fan_in_fan_out"] = false,
        ["inference_mode"] = true,
        ["init_lora_weights"] = true,
        ["layer_replication"] = null,
        ["layers_pattern"] = null,
        ["layers_to_transform"] = null,
        ["loftq_config"] = new JsonObject(),
        ["lora_alpha"] = Alpha,
        ["lora_dropout"] = Dropout,
        ["megatron_config"] = null,
        ["megatron_core"] = "megatron.core",
        ["modules_to_save"] = ModulesToSave.Count == 0 ? null : new JsonArray(ModulesToSave.Select(m => (JsonNode)m).ToArray()),
        ["peft_type"] = "LORA",
        ["r"] = R,
        ["rank_pattern"] = new JsonObject(RankPattern.Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
        ["revision"] = null,
        ["target_modules"] = TargetRegex is not null ? TargetRegex : new JsonArray(TargetModules.Select(m => (JsonNode)m).ToArray()),
        ["task_type"] = "CAUSAL_LM",
        ["use_dora"] = UseDora,
        ["use_rslora"] = UseRsLora,
    };
}
