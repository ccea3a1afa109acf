using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;
using SharpTune.Tokenization;

namespace SharpTune.Training;

/// <summary>
/// The checks `train` makes before its first step, in one place: `validate` runs these same ones, so that a config that
/// validates does not then fail in train. Files the config names (ConfigChecks), the model against the config (this
/// class), and the data — read, templated, tokenized and split exactly as training reads it (DataPipeline).
/// </summary>
public static class Preflight
{
    /// <summary>What train reads as a local data file even when the path has the form owner/name (DatasetSources).</summary>
    /// <summary>
    /// The model's limits against the config: sequence_len within the positions the model supports (rope scaling may
    /// extend them), LoRA target modules that name linear layers the model has. Throws <see cref="ConfigProblemsException"/>.
    /// </summary>
    public static void CheckModel(TrainConfig config, ModelConfig model, string source)
    {
        var problems = new List<string>();
        var (limit, why) = SequenceLimit(model);
        if (config.SequenceLen > limit)
            problems.Add($"{source}: sequence_len: {config.SequenceLen} is longer than base_model supports ({why}); expected sequence_len ≤ {limit}");
        if (config.Adapter is not null && config.LoraModelDir is null && !config.LoraTargetLinear && config.LoraTargetModules.Count > 0)
        {
            var linear = LinearNames(model);
            // A target matches a module whose name ends with it (q_proj, self_attn.q_proj): its last part must be a linear layer's name.
            if (!config.LoraTargetModules.Any(t => linear.Contains(t.Split('.')[^1])))
                problems.Add($"{source}: lora_target_modules: no linear layer matches [{string.Join(", ", config.LoraTargetModules)}]; this model has: {string.Join(", ", linear)}");
        }
        if (problems.Count > 0) throw new ConfigProblemsException(problems);
    }

    /// <summary>The longest sequence the model's positions cover, and why: max_position_embeddings, or what rope_scaling extends it to.</summary>
    public static (int Limit, string Why) SequenceLimit(ModelConfig model)
    {
        int positions = model.MaxPositionEmbeddings;
        if (model.RopeScaling is not { } scaling || scaling.Type is "default" || scaling.Factor <= 1)
            return (positions, $"max_position_embeddings {positions} in its config.json, and no rope_scaling to extend it");
        long original = scaling.OriginalMaxPositionEmbeddings ?? positions;
        long scaled = Math.Max(positions, (long)Math.Floor(original * scaling.Factor));
        int limit = (int)Math.Min(scaled, int.MaxValue);
        return (limit, $"rope_scaling {scaling.Type} with factor {scaling.Factor.ToString(System.Globalization.CultureInfo.InvariantCulture)} over {original} positions = {limit}");
    }

    /// <summary>Leaf names of the decoder's linear layers, in module order (what lora_target_modules can name).</summary>
    private static List<string> LinearNames(ModelConfig model)
    {
        var names = ModelInventory.From(model).Layers.SelectMany(l => l).Select(l => l.Name).Distinct().ToList();
        if (!model.TieWordEmbeddings) names.Add("lm_head");
        return names;
    }

    /// <summary>
    /// Why the data cannot be checked on this machine without fetching it (a Hugging Face dataset id, a tokenizer that is
    /// a repo id), or null when every dataset and the tokenizer are local.
    /// </summary>
    public static string? DataNotLocal(TrainConfig config, string configDir)
    {
        foreach (var d in config.Datasets.Concat(config.TestDatasets).Concat(config.PretrainingDataset))
        {
            if (d.Path is not { } path) continue;
            string full = Path.IsPathRooted(path) ? path : Path.GetFullPath(Path.Combine(configDir, path));
            bool local = File.Exists(full) || Directory.Exists(full) || path.IndexOfAny(['*', '?']) >= 0 || !DatasetSources.NamesHubDataset(path);
            if (!local) return $"{path} is a Hugging Face dataset id (train downloads it; `sharptune prepare CONFIG` checks its rows)";
        }
        string tokenizer = config.TokenizerConfig ?? config.BaseModel ?? "";
        return Directory.Exists(tokenizer) ? null : $"the tokenizer {tokenizer} is a Hugging Face repo id (train downloads it)";
    }

    /// <summary>
    /// Reads, templates, tokenizes and splits the data exactly as train does (missing files, empty folders, bad rows,
    /// unknown chat templates, rows all longer than sequence_len, val_set_size larger than the data). A message about a
    /// config key gets the config file in front, as every other config message has.
    /// </summary>
    public static PreparedData PrepareData(TrainConfig config, HfTokenizer tokenizer, string configDir, Action<string> warn, string source, DataOptions options)
    {
        try
        {
            return config.PretrainingDataset.Count > 0
                ? HeldOutOnly(config, tokenizer, configDir, warn, options)
                : DataPipeline.Prepare(config, tokenizer, configDir, warn, options);
        }
        catch (InvalidInputException e) when (e.GetType() == typeof(InvalidInputException) && !Path.IsPathRooted(e.Message))
        {
            throw new InvalidInputException($"{source}: {e.Message}");
        }
    }

    /// <summary>A streamed pretraining run: its rows are read as training consumes them, so only test_datasets are prepared up front.</summary>
    private static PreparedData HeldOutOnly(TrainConfig config, HfTokenizer tokenizer, string configDir, Action<string> warn, DataOptions options)
    {
        if (config.TestDatasets.Count == 0)
            return new PreparedData([], [], [], [], new DataStats());
        var held = DataPipeline.Prepare(config with { Datasets = config.TestDatasets, TestDatasets = [], PretrainingDataset = [], ValSetSize = 0 },
            tokenizer, configDir, warn, options);
        return new PreparedData([], held.Train, [], [], held.Stats with { TrainRows = 0, EvalRows = held.Train.Count });
    }
}
