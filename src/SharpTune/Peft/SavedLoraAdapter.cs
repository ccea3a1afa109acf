using System.Text.Json;
using System.Text.Json.Nodes;
using SharpTune.Modeling;
using SharpTune.SafeTensors;

namespace SharpTune.Peft;

/// <summary>
/// A PEFT adapter folder (adapter_config.json + adapter_model.safetensors) as the model loader applies it. Its config
/// is read once, when it is opened, so a bad adapter is refused before the base model is loaded.
/// </summary>
public sealed record SavedLoraAdapter(string Dir, LoraSettings Settings) : ISavedAdapter
{
    public string WeightsFile => Path.Combine(Dir, SafeTensorsCheckpoint.AdapterFileName);

    /// <summary>The one reader of adapter_config.json.</summary>
    public static SavedLoraAdapter Open(string adapterDir)
    {
        var configPath = Path.Combine(adapterDir, "adapter_config.json");
        if (!File.Exists(configPath)) throw new InvalidInputException($"{adapterDir}: no adapter_config.json in this adapter folder");
        JsonObject json;
        try
        {
            json = JsonNode.Parse(File.ReadAllText(configPath)) as JsonObject ?? throw new InvalidInputException($"{configPath}: expected a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidInputException($"{configPath}: not valid JSON ({e.Message})");
        }
        return new SavedLoraAdapter(adapterDir, LoraSettings.FromAdapterConfig(json, configPath));
    }

    /// <summary>Injects the adapters the config describes (base frozen) and copies their saved tensors in.</summary>
    public void ApplyTo(CausalLM model)
    {
        Lora.Inject(model, Settings, seed: 0);
        Lora.LoadWeights(model, Dir);
    }
}
