using System.Text.Json.Nodes;

namespace SharpTune.Modeling;

/// <summary>One supported model_type: how its config.json maps to <see cref="ModelConfig"/>, and its init-model presets.</summary>
public interface IModelFamily
{
    string ModelType { get; }
    /// <summary>The `architectures` entry transformers expects, e.g. LlamaForCausalLM.</summary>
    string Architecture { get; }
    ModelConfig Parse(ConfigJson json);
    /// <summary>Preset name → config.json fields (tiny, small, and real model shapes for memory math and benchmarks).</summary>
    IReadOnlyDictionary<string, JsonObject> Presets { get; }
}

/// <summary>The registry of families; the one place that lists what is supported.</summary>
public static class ModelFamilies
{
    public static readonly IReadOnlyList<IModelFamily> All = [new Llama(), new Mistral(), new Qwen2(), new Gemma(), new Gemma2(), new Phi3(), new Qwen3(), new Gemma3(), new Mixtral(), new Qwen3Moe()];

    public static IModelFamily Get(string modelType, string source) =>
        All.FirstOrDefault(f => f.ModelType == modelType)
        ?? (modelType == "gemma3"
            ? throw new InvalidInputException($"{source}: model_type 'gemma3' is the multimodal Gemma 3 (Gemma3ForConditionalGeneration, text model under text_config, weights under language_model.*), which is not supported; use a text-only gemma3_text checkpoint (Gemma3ForCausalLM, e.g. gemma-3-1b)")
            : (IModelFamily?)null)
        ?? throw new InvalidInputException($"{source}: model_type '{modelType}' is not supported; supported: {string.Join(", ", All.Select(f => f.ModelType))}");

    public static ModelConfig ParseConfig(JsonObject json, string source)
    {
        var reader = new ConfigJson(json, source);
        if (!reader.Has("model_type")) throw new InvalidInputException($"{source}: model_type is missing; supported: {string.Join(", ", All.Select(f => f.ModelType))}");
        return Get(reader.String("model_type", ""), source).Parse(reader).Validated(source);
    }

    /// <summary>
    /// For `validate`: parses a local model folder's config.json (as train will) so that an unsupported model_type or a
    /// bad field is refused before any training; the error names the training config and its key. Null for a repo id.
    /// </summary>
    public static ModelConfig? CheckLocal(string source, string key, string? folder)
    {
        if (folder is null || !Directory.Exists(folder)) return null;
        try
        {
            return LoadConfig(folder);
        }
        catch (InvalidInputException e)
        {
            throw new InvalidInputException($"{source}: {key}: {e.Message}");
        }
    }

    public static ModelConfig LoadConfig(string modelDir)
    {
        var path = Path.Combine(modelDir, "config.json");
        if (!File.Exists(path)) throw new InvalidInputException($"{modelDir}: no config.json in this model folder");
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(path));
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new InvalidInputException($"{path}: not valid JSON ({e.Message})");
        }
        return ParseConfig(node as JsonObject ?? throw new InvalidInputException($"{path}: expected a JSON object"), path);
    }
}

/// <summary>Field defaults of one family's transformers Config class, used where config.json omits a key.</summary>
public sealed record FamilyDefaults
{
    public required int VocabSize { get; init; }
    public required int HiddenSize { get; init; }
    public required int IntermediateSize { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    /// <summary>null: as many KV heads as attention heads (no grouped-query attention).</summary>
    public int? KvHeads { get; init; }
    /// <summary>null: hidden_size / num_attention_heads.</summary>
    public int? HeadDim { get; init; }
    public required int MaxPositions { get; init; }
    public required double RmsNormEps { get; init; }
    public required double RopeTheta { get; init; }
    /// <summary>tie_word_embeddings: lm_head shares the embedding matrix.</summary>
    public required bool Tie { get; init; }
    public required string HiddenAct { get; init; }
}

/// <summary>Parsing shared by all families: the keys every transformers decoder config has.</summary>
public static class CommonConfig
{
    public static ModelConfig Parse(ConfigJson j, string modelType, FamilyDefaults d)
    {
        int hidden = j.Int("hidden_size", d.HiddenSize);
        int heads = j.Int("num_attention_heads", d.Heads);
        int layers = j.Int("num_hidden_layers", d.Layers);
        int maxPositions = j.Int("max_position_embeddings", d.MaxPositions);
        int headDim = j.IntOrNull("head_dim") ?? d.HeadDim ?? hidden / heads;
        var eos = j.IntList("eos_token_id");
        return new ModelConfig
        {
            ModelType = modelType,
            VocabSize = j.Int("vocab_size", d.VocabSize),
            HiddenSize = hidden,
            IntermediateSize = j.Int("intermediate_size", d.IntermediateSize),
            NumHiddenLayers = layers,
            NumAttentionHeads = heads,
            NumKeyValueHeads = j.IntOrNull("num_key_value_heads") ?? d.KvHeads ?? heads,
            HeadDim = headDim,
            RmsNormEps = j.Double("rms_norm_eps", d.RmsNormEps),
            RopeTheta = j.Double("rope_theta", d.RopeTheta),
            RopeScaling = j.RopeScaling(maxPositions),
            MaxPositionEmbeddings = maxPositions,
            TieWordEmbeddings = j.Bool("tie_word_embeddings", d.Tie),
            HiddenAct = j.String("hidden_act", d.HiddenAct),
            AttentionScale = 1.0 / Math.Sqrt(headDim),
            SlidingLayers = new bool[layers],
            PartialRotaryFactor = j.Double("partial_rotary_factor", 1.0),
            InitializerRange = j.Double("initializer_range", 0.02),
            BosTokenId = j.IntOrNull("bos_token_id"),
            EosTokenIds = eos,
            PadTokenId = j.IntOrNull("pad_token_id"),
            Json = j.Json,
        };
    }

    /// <summary>A config.json body for a preset: the family's keys plus the bookkeeping keys transformers writes.</summary>
    public static JsonObject Preset(string modelType, string architecture, JsonObject fields)
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(architecture),
            ["model_type"] = modelType,
            ["torch_dtype"] = "float32",
            ["initializer_range"] = 0.02,
            ["use_cache"] = true,
        };
        foreach (var (key, value) in fields) json[key] = value?.DeepClone();
        return json;
    }
}
