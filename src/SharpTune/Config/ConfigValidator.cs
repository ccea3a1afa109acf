using System.Globalization;

namespace SharpTune.Config;

/// <summary>
/// Rules that involve more than one key, checked once at load so that incompatible settings never reach training.
/// Per-key types and ranges are checked by the schema while binding.
/// </summary>
public static class ConfigValidator
{
    /// <summary>Validates a config built in code; <paramref name="source"/> names it in messages.</summary>
    public static TrainConfig Validate(TrainConfig config, string source, Action<string> warn) =>
        Validate(config, new HashSet<string>(), source, warn);

    /// <summary>
    /// Throws <see cref="ConfigProblemsException"/> listing every broken rule (a job service answers with all of them at
    /// once; the CLI prints them as one line); returns the config with implied values filled (qlora ⇒ load_in_4bit,
    /// lora_alpha ⇒ lora_r). <paramref name="present"/> holds the keys the user wrote.
    /// </summary>
    internal static TrainConfig Validate(TrainConfig c, ISet<string> present, string source, Action<string> warn)
    {
        var problems = new List<string>();
        void Error(string message) => problems.Add($"{source}: {message}");

        if (string.IsNullOrWhiteSpace(c.BaseModel))
            Error("base_model: missing; expected a model folder (HF layout) or a Hugging Face repo id");
        if (c.Datasets.Count == 0 && c.PretrainingDataset.Count == 0)
            Error("datasets: missing; expected a list of datasets, each with path and type");
        CheckPretraining(c, Error);
        CheckDatasets(c.Datasets, "datasets", c.Rl, Error);
        if (c.HubModelId is { } hubId && !ConfigChecks.LooksLikeRepoId(hubId))
            Error($"hub_model_id: '{hubId}' is not a Hugging Face repo id; expected owner/name");
        if (c.HubModelId is null && (present.Contains("hub_strategy") || present.Contains("hub_private_repo")))
            warn($"{source}: hub_strategy / hub_private_repo have no effect without hub_model_id");
        CheckDatasets(c.TestDatasets, "test_datasets", c.Rl, Error);
        CheckChatTemplate(c.ChatTemplate, c.ChatTemplateJinja, "", Error);
        foreach (var (list, key) in new[] { (c.Datasets, "datasets"), (c.TestDatasets, "test_datasets") })
            for (int i = 0; i < list.Count; i++)
                if (list[i].ChatTemplate != null) CheckChatTemplate(list[i].ChatTemplate, list[i].ChatTemplateJinja, $"{key}.{i}.", Error);

        // ---- steps and schedule ----
        bool hasMaxSteps = c.MaxSteps is >= 1;
        if (!hasMaxSteps && c.NumEpochs <= 0)
            Error($"num_epochs: {Num(c.NumEpochs)} with max_steps: {(c.MaxSteps?.ToString() ?? "null")} trains nothing; expected num_epochs > 0 or max_steps ≥ 1");
        if (c.WarmupSteps != null && c.WarmupRatio != null)
            Error($"warmup_steps: {c.WarmupSteps} and warmup_ratio: {Num(c.WarmupRatio.Value)} are both set; expected one of them");
        if (c.CosineMinLrRatio != null && c.LrScheduler is not (LrSchedulerType.Cosine or LrSchedulerType.CosineWithMinLr))
            Error($"cosine_min_lr_ratio is set but lr_scheduler is {ConfigNames.ToSnake(c.LrScheduler.ToString())}; expected lr_scheduler: cosine or cosine_with_min_lr");
        if (c.LrScheduler == LrSchedulerType.CosineWithMinLr && c.CosineMinLrRatio == null)
            Error("lr_scheduler: cosine_with_min_lr needs cosine_min_lr_ratio; expected a number in [0, 1]");
        if (c.EvalSteps != null && c.EvalsPerEpoch != null)
            Error($"eval_steps: {c.EvalSteps} and evals_per_epoch: {c.EvalsPerEpoch} are both set; expected one of them");
        if (c.SaveSteps != null && c.SavesPerEpoch != null)
            Error($"save_steps: {c.SaveSteps} and saves_per_epoch: {c.SavesPerEpoch} are both set; expected one of them");
        if (c.ValSetSize >= 1 && c.ValSetSize != Math.Floor(c.ValSetSize))
            Error($"val_set_size: {Num(c.ValSetSize)} is invalid; expected a fraction in [0, 1) or a whole row count");
        bool hasEvalSet = c.ValSetSize > 0 || c.TestDatasets.Count > 0;
        if (c.EarlyStoppingPatience != null && !(hasEvalSet && c.DoEval))
            Error($"early_stopping_patience: {c.EarlyStoppingPatience} needs evaluation; expected val_set_size > 0 or test_datasets, with do_eval: true");
        if (c.ValSetSize > 0 && c.TestDatasets.Count > 0)
            Error($"val_set_size: {Num(c.ValSetSize)} and test_datasets are both set; expected one source of evaluation data");

        if (c.WarmupSteps is >= 1 and var warmup && warmup != Math.Floor(warmup))
            Error($"warmup_steps: {Num(warmup)} is invalid; expected a whole number of steps, or a fraction below 1 of the total steps");

        // ---- optimizer and trainable parameters ----
        // Values the enums declare as refused (adamw_torch_4bit, offload_disk): here rather than while binding, so that a
        // config built in code is refused the same way.
        foreach (var refusal in RefusedValues(c, ConfigSchema.TrainKeys, "")) Error(refusal);
        if (c.UnfrozenParameters.Count > 0 && c.Adapter != null)
            Error($"unfrozen_parameters selects parameters of a full fine-tune but adapter is {Name(c.Adapter)}; remove it, or use lora_modules_to_save to train whole modules beside the adapter");
        foreach (var pattern in c.UnfrozenParameters)
        {
            if (UnfrozenRowRange.IsMatch(pattern))
                Error($"unfrozen_parameters: '{pattern}' cannot be honoured: row ranges of a parameter ([start:end]) are not supported; unfreeze whole parameters");
            else try { _ = new System.Text.RegularExpressions.Regex(pattern); }
            catch (ArgumentException e) { Error($"unfrozen_parameters: '{pattern}' is not a valid regular expression ({e.Message})"); }
        }
        foreach (var plugin in c.Plugins)
            if (!NotUsedPlugins.Contains(plugin.Split('.')[^1]))
                Error($"plugins: {plugin} cannot be honoured: axolotl plugins do not run here (accepted: {string.Join(", ", NotUsedPlugins)}, which only swap kernels or loggers); remove it");
        if (c.ModelType is { } modelType && System.Text.RegularExpressions.Regex.IsMatch(modelType, "For(SequenceClassification|TokenClassification|QuestionAnswering)$|^AutoModelFor(?!CausalLM)(?!ImageTextToText)(?!Vision2Seq)"))
            Error($"model_type: {modelType} cannot be honoured: SharpTune trains causal language models; use AutoModelForCausalLM (or remove model_type)");

        // ---- precision ----
        if (c.Fp16 && c.Bf16 is Bf16Mode.True or Bf16Mode.Full)
            Error($"bf16: {ConfigNames.ToSnake(c.Bf16.ToString())} and fp16: true are both set; expected at most one of them");

        // ---- adapter and quantization ----
        if (c.Adapter != null && c.LoraR == null)
            Error($"adapter: {Name(c.Adapter)} needs lora_r; expected lora_r: an integer ≥ 1 (e.g. 8, 16)");
        if (c.LoadIn4bit && c.Adapter != AdapterType.Qlora)
            Error($"load_in_4bit: true needs adapter: qlora (found adapter: {Name(c.Adapter)})");
        if (c.Adapter == AdapterType.Qlora && !c.LoadIn4bit && present.Contains("load_in_4bit"))
            Error("adapter: qlora with load_in_4bit: false; expected load_in_4bit: true (or adapter: lora)");
        if (c.LoadIn8bit && c.Adapter != AdapterType.Lora)
            Error($"load_in_8bit: true needs adapter: lora (found adapter: {Name(c.Adapter)})");
        if (c.MergeLora && c.Adapter == null)
            Error("merge_lora: true needs an adapter; expected adapter: lora or qlora");
        if (c.MergeIntoOriginal != null && c.Adapter != AdapterType.Qlora)
            Error($"merge_into_original is set but adapter is {Name(c.Adapter)}; it names the full-precision model a QLoRA adapter merges into: expected adapter: qlora with merge_lora: true, or remove it");
        else if (c.MergeIntoOriginal != null && !c.MergeLora)
            Error("merge_into_original is set but merge_lora is false; expected merge_lora: true (it says where the adapter is merged), or remove it");
        if (c.LoraModelDir != null && c.Adapter == null)
            Error("lora_model_dir is set without an adapter; expected adapter: lora or qlora");
        if (c.Adapter == null)
        {
            foreach (var key in new[] { "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_target_linear", "peft_use_dora", "peft_use_rslora" })
                if (present.Contains(key)) warn($"{source}: {key} is ignored because adapter is not set (full fine-tuning)");
        }

        // ---- preference training ----
        if (c.Rl != null && c.SamplePacking)
            Error($"sample_packing: true is not supported with rl: {Name(c.Rl)}; expected sample_packing: false");
        if (c.Rl == RlType.Grpo) CheckGrpo(c, present, Error);
        else if (TrlChanged(c.Trl)) warn($"{source}: trl is ignored because rl is {Name(c.Rl)} (its keys configure rl: grpo)");

        if (problems.Count > 0) throw new ConfigProblemsException(problems);
        return c with
        {
            LoadIn4bit = c.LoadIn4bit || c.Adapter == AdapterType.Qlora,
            LoraAlpha = c.Adapter != null ? c.LoraAlpha ?? c.LoraR : c.LoraAlpha,
        };
    }

    /// <summary>Every value, at any depth (trl.*, datasets.N.*), whose enum member is a [RefusedValue].</summary>
    private static IEnumerable<string> RefusedValues(object record, IReadOnlyList<ConfigKey> keys, string prefix)
    {
        foreach (var key in keys.Where(k => k.Property != null))
        {
            object? value = key.Property!.GetValue(record);
            if (key.RefusalOf(value) is { } reason)
                yield return $"{prefix}{key.Name}: {ConfigWriter.Scalar(value)} cannot be honoured: {reason}";
            else if (key.Type == ConfigValueType.Section && value != null)
                foreach (var refusal in RefusedValues(value, key.SubKeys!, $"{prefix}{key.Name}.")) yield return refusal;
            else if (value is IReadOnlyList<DatasetConfig> datasets)
                for (int i = 0; i < datasets.Count; i++)
                    foreach (var refusal in RefusedValues(datasets[i], ConfigSchema.DatasetKeys, $"{prefix}{key.Name}.{i}.")) yield return refusal;
        }
    }

    /// <summary>Whether any trl key differs from its default (a written-back config lists the defaults without meaning them).</summary>
    private static bool TrlChanged(TrlConfig trl)
    {
        var defaults = new TrlConfig();
        return ConfigSchema.TrlKeys.Any(k => ConfigWriter.Scalar(k.Property!.GetValue(trl)) != ConfigWriter.Scalar(k.Property.GetValue(defaults)));
    }

    private static void CheckGrpo(TrainConfig c, ISet<string> present, Action<string> error)
    {
        var t = c.Trl;
        if (t.UseVllm) error("trl.use_vllm: true is not supported; completions are sampled by SharpTune's batched generator (expected false)");
        if (c.PrecomputeRefLogProbs)
            error("precompute_ref_log_probs: true does not apply to rl: grpo (its completions are sampled during training); expected false");
        if (c.MicroBatchSize % t.NumGenerations != 0)
            error($"micro_batch_size: {c.MicroBatchSize} is not a multiple of trl.num_generations: {t.NumGenerations}; each micro-batch holds whole groups (micro_batch_size = prompts × num_generations)");
        if (c.EvalBatchSize is { } eval && eval % t.NumGenerations != 0)
            error($"eval_batch_size: {eval} is not a multiple of trl.num_generations: {t.NumGenerations}; expected prompts × num_generations");
        foreach (var name in t.RewardFuncs)
            if (!ConfigSchema.BuiltInRewards.Contains(name))
                error($"trl.reward_funcs: '{name}' is not a built-in reward; expected one of {string.Join(", ", ConfigSchema.BuiltInRewards)} " +
                            "(Python reward functions do not run here: score with reward_command instead)");
        if (t.RewardFuncs.Distinct().Count() != t.RewardFuncs.Count)
            error($"trl.reward_funcs: [{string.Join(", ", t.RewardFuncs)}] names a function twice; expected each once");
        int functions = t.RewardFuncs.Count + (c.RewardCommand is null ? 0 : 1);
        if (functions == 0)
            error($"rl: grpo needs a reward: expected trl.reward_funcs (one or more of {string.Join(", ", ConfigSchema.BuiltInRewards)}) or reward_command");
        if (t.RewardWeights.Count > 0 && t.RewardWeights.Count != functions)
            error($"trl.reward_weights: {t.RewardWeights.Count} weight(s) for {functions} reward function(s) ({string.Join(", ", t.RewardFuncs.Concat(c.RewardCommand is null ? [] : ["command"]))}); expected one weight each");
        if (t.RewardFuncs.Contains("regex_match"))
        {
            if (c.RewardRegex is null) error("trl.reward_funcs: regex_match needs reward_regex; expected a regular expression the whole completion must match");
            else try { _ = new System.Text.RegularExpressions.Regex(c.RewardRegex); }
            catch (ArgumentException e) { error($"reward_regex: {c.RewardRegex} is not a valid regular expression ({e.Message})"); }
        }
        if (t.RewardFuncs.Contains("tag_format") && c.RewardFormatTags.Count == 0)
            error("reward_format_tags: empty; tag_format needs at least one tag name");
        if (c.RewardSoftPunishCache is { } cache && cache >= t.MaxCompletionLength)
            error($"reward_soft_punish_cache: {cache} is not below trl.max_completion_length: {t.MaxCompletionLength}; expected fewer tokens than the completion budget");
    }

    /// <summary>A chat_template value must be one axolotl (or SharpTune) names; jinja needs its chat_template_jinja at the same level.</summary>
    private static void CheckChatTemplate(string? name, string? jinja, string prefix, Action<string> error)
    {
        if (name == null) return;
        if (Tokenization.BuiltInChatTemplates.Problem(name) is { } problem) error($"{prefix}chat_template: {problem}");
        else if (name == Tokenization.BuiltInChatTemplates.Jinja && string.IsNullOrWhiteSpace(jinja))
            error($"{prefix}chat_template: jinja needs {prefix}chat_template_jinja: (template text or a .jinja file)");
    }

    private static void CheckDatasets(IReadOnlyList<DatasetConfig> datasets, string key, RlType? rl, Action<string> error)
    {
        for (int i = 0; i < datasets.Count; i++)
        {
            var d = datasets[i];
            string at = $"{key}.{i}";
            if (string.IsNullOrWhiteSpace(d.Path))
                error($"{at}.path: missing; expected a local file or folder, or a Hugging Face dataset id");
            if (string.IsNullOrWhiteSpace(d.Type))
            {
                error($"{at}.type: missing; expected one of {string.Join(", ", ConfigSchema.AllDatasetTypes)}");
                continue;
            }
            string type = d.Type;
            bool sft = ConfigSchema.SftDatasetTypes.Contains(type);
            bool paired = ConfigSchema.PairedPreferenceDatasetTypes.Contains(type);
            bool unpaired = ConfigSchema.UnpairedPreferenceDatasetTypes.Contains(type);
            bool prompts = ConfigSchema.PromptDatasetTypes.Contains(type);
            if (rl == RlType.Grpo)
            {
                if (!prompts) error($"{at}.type: {type} is not a prompt format but rl is grpo; expected {string.Join(", ", ConfigSchema.PromptDatasetTypes)} (rows with a prompt and the fields the rewards read)");
                continue;
            }
            if (prompts)
                error($"{at}.type: {type} holds prompts for online RL; expected rl: grpo, or a supervised type ({string.Join(", ", ConfigSchema.SftDatasetTypes)})");
            else if (!sft && !paired && !unpaired)
                error($"{at}.type: {type} is invalid; expected one of {string.Join(", ", ConfigSchema.AllDatasetTypes)}");
            else if (rl == null && !sft)
                error($"{at}.type: {type} is a preference format but rl is not set; expected rl: {(unpaired ? "kto" : "dpo, orpo, simpo or kto")}, or a supervised type ({string.Join(", ", ConfigSchema.SftDatasetTypes)})");
            else if (rl != null && sft)
                error($"{at}.type: {type} is a supervised format but rl is {Name(rl)}; expected a preference type ({string.Join(", ", rl == RlType.Kto ? ConfigSchema.PairedPreferenceDatasetTypes.Concat(ConfigSchema.UnpairedPreferenceDatasetTypes) : ConfigSchema.PairedPreferenceDatasetTypes)})");
            else if (rl is not (null or RlType.Kto) && unpaired)
                error($"{at}.type: {type} holds unpaired (KTO) rows but rl is {Name(rl)}; expected rl: kto or a paired type ({string.Join(", ", ConfigSchema.PairedPreferenceDatasetTypes)})");
            else if (rl is { } trainer && !sft && !ConfigSchema.PreferenceTypesFor(trainer).Contains(type))
                error($"{at}.type: {type} is not a layout axolotl defines for rl: {Name(rl)}; expected one of {string.Join(", ", ConfigSchema.PreferenceTypesFor(trainer))}");
        }
    }

    /// <summary>pretraining_dataset is a stream of text: it has no length (max_steps), no held-out split and no preference rows.</summary>
    private static void CheckPretraining(TrainConfig c, Action<string> error)
    {
        if (c.PretrainingDataset.Count == 0) return;
        if (c.Datasets.Count > 0)
            error("pretraining_dataset and datasets are both set; expected one (axolotl trains on pretraining_dataset alone) — put evaluation data in test_datasets");
        if (c.MaxSteps is not >= 1)
            error("pretraining_dataset: a stream has no epoch length; set max_steps");
        if (c.ValSetSize > 0)
            error($"val_set_size: {Num(c.ValSetSize)} with pretraining_dataset; a stream has no held-out split — put evaluation data in test_datasets");
        if (c.Rl != null)
            error($"pretraining_dataset with rl: {Name(c.Rl)}; streamed text trains the causal-LM objective only");
        for (int i = 0; i < c.PretrainingDataset.Count; i++)
        {
            var d = c.PretrainingDataset[i];
            if (string.IsNullOrWhiteSpace(d.Path))
                error($"pretraining_dataset.{i}.path: missing; expected a local file or folder, or a Hugging Face dataset id");
            if (d.Type is not (null or "pretrain" or "pretraining" or "completion"))
                error($"pretraining_dataset.{i}.type: {d.Type} is not read from a stream; expected pretrain (raw text in text_column)");
        }
    }

    /// <summary>axolotl plugins that change kernels, loggers or device placement only: the trained weights do not depend on them.</summary>
    /// <summary>A trailing [start:end] in an unfrozen_parameters pattern selects embedding rows in axolotl; SharpTune trains whole parameters only.</summary>
    private static readonly System.Text.RegularExpressions.Regex UnfrozenRowRange = new(@"\[\s*-?\d*\s*:\s*-?\d*\s*\]$");

    private static readonly string[] NotUsedPlugins = ["LigerPlugin", "CutCrossEntropyPlugin", "KernelsPlugin", "SwanLabPlugin", "ExpertParallelPlugin"];

    private static string Name<T>(T? value) where T : struct, Enum => value == null ? "null" : ConfigNames.ToSnake(value.Value.ToString());
    private static string Num(double x) => x.ToString("R", CultureInfo.InvariantCulture);
}
