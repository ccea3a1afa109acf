using System.Reflection;
using System.Text.RegularExpressions;
using static SharpTune.Config.ConfigValueType;

namespace SharpTune.Config;

/// <summary>
/// The one table of config keys. It drives loading, type checks, --set, unknown-key suggestions, the YAML writer and
/// docs/config.md. A key maps to the TrainConfig/DatasetConfig property of the same name in PascalCase.
/// </summary>
public static partial class ConfigSchema
{
    private static readonly NumberRange AtLeast1 = NumberRange.AtLeast(1);
    private static readonly NumberRange AtLeast0 = NumberRange.AtLeast(0);
    private static readonly NumberRange Positive = NumberRange.Above(0);

    /// <summary>Dataset row formats for supervised training.</summary>
    public static IReadOnlyList<string> SftDatasetTypes { get; } =
        ["alpaca", "alpaca_chat", "sharegpt", "chat_template", "completion", "pretrain", "input_output"];

    /// <summary>axolotl's layouts for rl: dpo / simpo (its prompt_strategies/dpo functions): paired rows.</summary>
    public static IReadOnlyList<string> DpoLayoutTypes { get; } =
    [
        "chat_template.default", "chat_template.argilla_chat",
        "chatml.argilla", "chatml.argilla_chat", "chatml.icr", "chatml.intel", "chatml.prompt_pairs", "chatml.ultra",
        "llama3.default", "llama3.argilla_chat", "llama3.icr", "llama3.intel", "llama3.prompt_pairs", "llama3.ultra",
    ];

    /// <summary>axolotl's layouts for rl: kto (its prompt_strategies/kto functions): unpaired rows with a completion and a label.</summary>
    public static IReadOnlyList<string> KtoLayoutTypes { get; } =
    [
        "chatml.argilla", "chatml.argilla_chat", "chatml.intel", "chatml.prompt_pairs", "chatml.ultra",
        "llama3.argilla", "llama3.argilla_chat", "llama3.intel", "llama3.prompt_pairs", "llama3.ultra",
    ];

    /// <summary>axolotl's layouts for rl: orpo (its prompt_strategies/orpo functions).</summary>
    public static IReadOnlyList<string> OrpoLayoutTypes { get; } = ["chat_template.argilla"];

    /// <summary>The preference types rl reads: SharpTune's own (preference; kto for unpaired rows) and axolotl's layouts for that trainer.</summary>
    public static IReadOnlyList<string> PreferenceTypesFor(RlType rl) => rl switch
    {
        RlType.Kto => ["preference", "kto", "chat_template.default", .. KtoLayoutTypes],
        RlType.Orpo => ["preference", "chat_template.default", .. OrpoLayoutTypes],
        _ => ["preference", .. DpoLayoutTypes],
    };

    /// <summary>Paired preference formats (prompt, chosen, rejected) for dpo/orpo/simpo (and kto, which unpairs them).</summary>
    public static IReadOnlyList<string> PairedPreferenceDatasetTypes { get; } = ["preference", .. DpoLayoutTypes, .. OrpoLayoutTypes];

    /// <summary>Unpaired preference formats (prompt, completion, label) for kto.</summary>
    public static IReadOnlyList<string> UnpairedPreferenceDatasetTypes { get; } = ["kto", .. KtoLayoutTypes.Except(DpoLayoutTypes)];

    /// <summary>Prompt formats for online RL (rl: grpo): a prompt (text or messages) plus any fields the rewards read.</summary>
    public static IReadOnlyList<string> PromptDatasetTypes { get; } = ["prompt"];

    /// <summary>The built-in reward functions trl.reward_funcs may name (docs/rl.md).</summary>
    public static IReadOnlyList<string> BuiltInRewards { get; } = ["exact_match", "regex_match", "tag_format", "think_format", "json_valid", "length_penalty"];

    // Declared after the lists above: static initializers run in text order and the dataset table reads them.
    /// <summary>Keys of the nested `trl:` mapping (TRL's GRPOConfig names); declared before TrainKeys, whose trl key holds it.</summary>
    public static IReadOnlyList<ConfigKey> TrlKeys { get; } = BuildTrlKeys();
    public static IReadOnlyList<ConfigKey> TrainKeys { get; } = BuildTrainKeys();
    public static IReadOnlyList<ConfigKey> DatasetKeys { get; } = BuildDatasetKeys();

    public static IEnumerable<string> AllDatasetTypes =>
        SftDatasetTypes.Concat(PairedPreferenceDatasetTypes).Concat(UnpairedPreferenceDatasetTypes).Concat(PromptDatasetTypes);

    public static ConfigKey? FindTrainKey(string name) => Find(TrainKeys, name);
    public static ConfigKey? FindDatasetKey(string name) => Find(DatasetKeys, name);

    private static ConfigKey? Find(IReadOnlyList<ConfigKey> keys, string name) =>
        keys.FirstOrDefault(k => k.Name == name) ?? keys.FirstOrDefault(k => k.KeyAliases.Contains(name));

    private static IReadOnlyList<ConfigKey> BuildTrainKeys()
    {
        var keys = new List<ConfigKey>();
        string section = "";
        void Add(string name, ConfigValueType type, string doc, NumberRange? range = null, Type? choice = null,
            string? defaultText = null, PathResolution paths = PathResolution.None, string[]? keyAliases = null,
            Dictionary<string, (string, string?)>? valueAliases = null, Regex? pattern = null, string? patternText = null,
            IReadOnlyList<ConfigKey>? subKeys = null, bool mapping = false) =>
            keys.Add(new ConfigKey
            {
                Name = name, Type = type, Doc = doc, Section = section, Range = range, EnumType = choice,
                DefaultText = defaultText, Paths = paths, KeyAliases = keyAliases ?? [],
                ValueAliases = valueAliases ?? new(), Pattern = pattern, PatternText = patternText, SubKeys = subKeys, AcceptsMapping = mapping,
            });

        section = "Model";
        Add("base_model", Text, "Model folder in Hugging Face layout (relative to the config file) or a Hugging Face repo id. Required.",
            paths: PathResolution.IfExists);
        Add("revision_of_model", Text, "Branch, tag or commit of base_model when it is a Hugging Face repo id.", defaultText: "main");
        Add("base_model_config", Text, "Folder whose config.json is used instead of base_model's.", defaultText: "base_model",
            paths: PathResolution.IfExists);
        Add("tokenizer_config", Text, "Folder holding tokenizer.json and tokenizer_config.json.", defaultText: "base_model",
            paths: PathResolution.IfExists);
        Add("model_type", Text, "A causal-LM class (AutoModelForCausalLM, LlamaForCausalLM, ...; a ...ForConditionalGeneration class trains its language model); the architecture comes from config.json. A classification head (...ForSequenceClassification, ...ForTokenClassification) is refused.");
        Add("plugins", StringList, "axolotl plugins. Those that only swap kernels or loggers (LigerPlugin, CutCrossEntropyPlugin, KernelsPlugin, SwanLabPlugin, ExpertParallelPlugin) are accepted and not used here; any other plugin is refused by name.");
        Add("tokenizer_type", Text, "Accepted for compatibility (e.g. AutoTokenizer); the tokenizer comes from tokenizer.json.");
        Add("trust_remote_code", Bool, "Accepted for compatibility; SharpTune never runs code from a model repo.");
        Add("output_router_logits", Bool, "Mixture-of-experts models (mixtral, qwen3_moe): add router_aux_loss_coef (config.json) × the load-balancing loss to the training loss.",
            defaultText: "config.json's output_router_logits");
        Add("device", Text, "Compute device. auto picks CUDA when available, else CPU.",
            pattern: new Regex(@"^(auto|cpu|cuda(:\d+)?)$"), patternText: "auto, cpu, cuda or cuda:N");

        section = "Data";
        Add("datasets", DatasetList, "Training datasets; see [Dataset entries](#dataset-entries). Required.");
        Add("test_datasets", DatasetList, "Evaluation datasets, used instead of splitting val_set_size off the training data.");
        Add("pretraining_dataset", DatasetList, "Streamed pretraining text instead of datasets: entries with path (local or hub), name, split, data_files, " +
            "text_column (or field; default text) and type pretrain. Read in order as training consumes it, each document tokenized with EOS appended " +
            "and cut into rows of sequence_len; nothing is cached. Needs max_steps; evaluation comes from test_datasets (docs/datasets.md).");
        Add("val_set_size", Number, "Held-out part of the training data for evaluation: a fraction in [0, 1) or a whole row count.",
            range: AtLeast0);
        Add("dataset_prepared_path", Text, "Folder for the tokenized (and packed) dataset cache.",
            defaultText: "output_dir/prepared", paths: PathResolution.Always);
        Add("shuffle_merged_datasets", Bool, "Shuffle the rows after merging all datasets.");
        Add("dataset_exact_deduplication", Bool, "Drop rows whose token ids and labels equal an earlier row's (counted in a warning).");
        Add("dataset_processes", Integer, "Accepted for compatibility; data loading runs in-process.", range: AtLeast1);
        Add("dataloader_num_workers", Integer, "Accepted for compatibility; data loading runs in-process.", range: AtLeast0);
        Add("sequence_len", Integer, "Maximum tokens per training sequence.", range: AtLeast1);
        Add("excess_length_strategy", Choice, "What happens to rows longer than sequence_len.", choice: typeof(ExcessLengthStrategy));
        Add("sample_packing", Bool, "Pack several rows into each sequence; attention and positions stay within each row.");
        Add("eval_sample_packing", Bool, "Pack evaluation rows too.", defaultText: "sample_packing");
        Add("pad_to_sequence_len", Bool, "Pad every batch to sequence_len (fixed shapes).");
        Add("train_on_inputs", Bool, "Also compute the loss on prompt tokens (otherwise only on responses).");

        section = "Tokenizer and chat template";
        Add("chat_template", Text, "Chat template: one of axolotl's named templates (" + string.Join(", ", SharpTune.Tokenization.BuiltInChatTemplates.AxolotlNames) +
            "; texts identical to axolotl's), SharpTune's " + string.Join(", ", SharpTune.Tokenization.BuiltInChatTemplates.ExtraNames) +
            ", tokenizer_default (the tokenizer's own), tokenizer_default_fallback_NAME (the tokenizer's own, else NAME) or jinja (chat_template_jinja). Any other value is refused by validate.",
            defaultText: "tokenizer_default");
        Add("chat_template_jinja", Text, "Jinja chat template text, or a path to a .jinja file, used with chat_template: jinja.",
            paths: PathResolution.IfExists);
        Add("special_tokens", StringMap, "Special tokens to set or add: bos_token, eos_token, pad_token, unk_token.");
        Add("tokens", StringList, "Extra tokens to add to the vocabulary (embeddings grow to match). The old mapping form (tokens: {bos_token: ...}) is read as special_tokens.");
        Add("eot_tokens", StringList, "End-of-turn tokens of chat datasets (each must be one token of the tokenizer and appear in the chat template); their labels follow each dataset's train_on_eot, the eos_token's follow train_on_eos, as in axolotl.",
            defaultText: "null (the eos_token and the template's known end-of-turn tokens, following train_on_eos)");

        section = "Adapter (LoRA, DoRA, QLoRA)";
        Add("adapter", Choice, "lora or qlora trains an adapter over frozen base weights; null trains all weights.", choice: typeof(AdapterType));
        Add("lora_model_dir", Text, "Folder of an existing PEFT adapter to continue training from.", paths: PathResolution.IfExists);
        Add("lora_r", Integer, "LoRA rank. Required when adapter is set.", range: AtLeast1);
        Add("lora_alpha", Integer, "LoRA alpha; the update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA).", range: AtLeast1,
            defaultText: "lora_r");
        Add("lora_dropout", Number, "Dropout applied to the LoRA input.", range: NumberRange.Unit);
        Add("lora_target_modules", StringList, "Module names to adapt, e.g. [q_proj, k_proj, v_proj, o_proj].");
        Add("lora_target_linear", Bool, "Adapt every linear layer except lm_head.");
        Add("lora_modules_to_save", StringList, "Modules trained in full and saved with the adapter, e.g. [embed_tokens, lm_head].");
        Add("lora_fan_in_fan_out", Bool, "Accepted for compatibility; the supported families use plain linear layers.");
        Add("peft_use_dora", Bool, "DoRA: learn a magnitude vector on top of the LoRA direction update.");
        Add("peft_use_rslora", Bool, "rsLoRA: scale the update by alpha / sqrt(r).");
        Add("load_in_4bit", Bool, "Quantize the frozen base weights to 4 bits (QLoRA). Needs adapter: qlora.", defaultText: "true with adapter: qlora, else false");
        Add("load_in_8bit", Bool, "Quantize the frozen base weights to int8. Needs adapter: lora.");
        Add("bnb_4bit_quant_type", Choice, "4-bit data type.", choice: typeof(QuantType4Bit));
        Add("bnb_4bit_use_double_quant", Bool, "Quantize the per-block scales of 4-bit weights as well.");
        Add("bnb_4bit_compute_dtype", Choice, "Dtype the 4-bit weights are dequantized to for matmuls.", choice: typeof(ComputeDtype),
            defaultText: "the compute dtype (bf16/fp16/fp32)");
        Add("merge_lora", Bool, "After training, merge the adapter into the base weights and save the model to output_dir/merged.",
            keyAliases: ["save_merged"]);
        Add("merge_into_original", Text, "With merge_lora after QLoRA: a full-precision model folder to merge the adapter into instead of the dequantized 4-bit base.",
            paths: PathResolution.IfExists);

        section = "Batch, schedule and optimizer";
        Add("micro_batch_size", Integer, "Rows per forward pass.", range: AtLeast1);
        Add("eval_batch_size", Integer, "Rows per evaluation forward pass.", range: AtLeast1, defaultText: "micro_batch_size");
        Add("gradient_accumulation_steps", Integer, "Micro-batches per optimizer step; the loss is averaged over all their tokens.",
            range: AtLeast1);
        Add("num_epochs", Number, "Passes over the training data (fractions allowed). Ignored when max_steps ≥ 1.", range: new NumberRange(0, true, 100_000, true));
        Add("max_steps", Integer, "Optimizer steps to run; when ≥ 1 it overrides num_epochs (-1 or 0: train for num_epochs, as transformers' -1).", range: NumberRange.AtLeast(-1));
        Add("learning_rate", Number, "Peak learning rate (2e-4 and \"2e-4\" both accepted).", range: Positive);
        Add("lr_scheduler", Choice, "Learning-rate schedule after warmup. cosine_with_min_lr needs cosine_min_lr_ratio.",
            choice: typeof(LrSchedulerType));
        Add("cosine_min_lr_ratio", Number, "Floor of the cosine schedule as a fraction of learning_rate.",
            range: new NumberRange(0, true, 1, true), defaultText: "null (decay to 0)");
        Add("warmup_steps", Number, "Steps of linear warmup from 0 to learning_rate; a value below 1 is a fraction of the total steps (as transformers reads warmup_steps: 0.1).", range: AtLeast0, defaultText: "null (0)");
        Add("warmup_ratio", Number, "Linear warmup as a fraction of the total steps (instead of warmup_steps).", range: NumberRange.Unit);
        Add("optimizer", Choice,
            "Optimizer. adamw_torch, adamw_torch_fused, adamw_hf and adamw are the same AdamW (decoupled weight decay, bias correction); paged_adamw_32bit too (paging only moves memory). " +
            "adamw_8bit (also adamw_bnb_8bit, paged_adamw_8bit, adamw_torch_8bit) is AdamW with both moments stored block-wise in 8 bits (blocks of 2048, bitsandbytes' dynamic map; 2 bytes of state per parameter instead of 8). " +
            "muon orthogonalises the momentum of 2-D weights by Newton–Schulz iteration and runs AdamW for the rest (embeddings, lm_head, norms, biases). adamw_torch_4bit is refused.",
            choice: typeof(OptimizerType),
            valueAliases: new()
            {
                ["adamw_bnb_8bit"] = ("adamw_8bit", null),
                ["paged_adamw_8bit"] = ("adamw_8bit", null),
                ["adamw_torch_8bit"] = ("adamw_8bit", null),
                ["paged_adamw_32bit"] = ("adamw_torch", null),
            });
        Add("weight_decay", Number, "Decoupled weight decay (not applied to biases and norm weights).", range: AtLeast0);
        Add("adam_beta1", Number, "Adam/AdamW/Lion beta1.", range: NumberRange.Unit);
        Add("adam_beta2", Number, "Adam/AdamW/Lion beta2.", range: NumberRange.Unit);
        Add("adam_epsilon", Number, "Adam/AdamW epsilon.", range: Positive);
        Add("max_grad_norm", Number, "Clip the global gradient L2 norm to this value; 0 disables clipping.", range: AtLeast0);
        Add("neftune_noise_alpha", Number, "NEFTune: add uniform noise scaled by alpha / sqrt(L·d) to input embeddings while training.",
            range: Positive, defaultText: "null (off)");
        Add("seed", Integer, "Seed for initialization, dropout, shuffling and splits.");

        section = "Precision and memory";
        Add("bf16", Choice, "bfloat16 compute: true, false, auto (bf16 on CUDA, and on CPUs with bf16 units) or full (bf16 weights too).",
            choice: typeof(Bf16Mode));
        Add("fp16", Bool, "float16 compute with loss scaling. Not with bf16: true.");
        Add("tf32", Bool, "Allow TF32 matmuls on CUDA.");
        Add("gradient_checkpointing", Choice, "Recompute activations during the backward pass to save memory. offload also keeps each checkpointed layer input in pinned host memory while training on CUDA (on the CPU it is the same as true). offload_disk is refused.",
            choice: typeof(GradientCheckpointingMode), valueAliases: new() { ["yes"] = ("true", null), ["no"] = ("false", null), ["unsloth"] = ("offload", null) });
        Add("unfrozen_parameters", StringList, "Full fine-tuning: only parameters whose name matches one of these regular expressions (re.match: anchored at the start) train; the rest stay frozen. e.g. ['^lm_head.weight$', 'model.layers.2[0-9]+.mlp.*'].",
            defaultText: "all parameters");
        Add("flash_attention", Bool, "Accepted for compatibility; attention runs libtorch's scaled_dot_product_attention.");
        Add("sdp_attention", Bool, "Accepted for compatibility; attention runs libtorch's scaled_dot_product_attention.");
        Add("xformers_attention", Bool, "Accepted for compatibility; attention runs libtorch's scaled_dot_product_attention.");

        section = "Evaluation, checkpoints and logging";
        Add("do_eval", Bool, "Evaluate when a validation set exists (val_set_size > 0 or test_datasets).");
        Add("eval_steps", Integer, "Evaluate every N optimizer steps.", range: AtLeast1);
        Add("eval_exact_match_samples", Integer, "SharpTune: before and after training, greedily complete the prompts of this many held-out rows and report how many reproduce their labelled answer exactly (0 = off).", range: AtLeast0);
        Add("evals_per_epoch", Integer, "Evaluations per epoch (instead of eval_steps); 0 = no evaluation during training.", range: AtLeast0);
        Add("save_steps", Integer, "Save a checkpoint every N optimizer steps.", range: AtLeast1);
        Add("saves_per_epoch", Integer, "Checkpoints per epoch (instead of save_steps).", range: AtLeast1);
        Add("save_total_limit", Integer, "Keep the newest this many checkpoints (plus the one with the best eval loss); older ones are deleted.", range: AtLeast1,
            defaultText: "null (keep all)");
        Add("save_safetensors", Bool, "Write weights as safetensors.");
        Add("resume_from_checkpoint", Text, "Checkpoint folder to resume from (weights, optimizer, scheduler, RNG and data position).",
            paths: PathResolution.IfExists);
        Add("auto_resume_from_checkpoints", Bool, "Resume from the newest checkpoint in output_dir when there is one.");
        Add("early_stopping_patience", Integer, "Stop after this many evaluations without a lower validation loss.", range: AtLeast1,
            defaultText: "null (off)");
        Add("loss_watchdog_threshold", Number, "Abort when the training loss stays above this value for loss_watchdog_patience steps.",
            range: Positive, defaultText: "null (off)");
        Add("loss_watchdog_patience", Integer, "Consecutive steps above loss_watchdog_threshold before aborting.", range: AtLeast1);
        Add("logging_steps", Integer, "Log metrics (metrics.jsonl, TensorBoard, console) every N optimizer steps.", range: AtLeast1);
        Add("use_tensorboard", Bool, "Write TensorBoard event files to output_dir/runs.");
        Add("output_dir", Text, "Run folder for checkpoints, the adapter or model, and metrics (relative to the config file).",
            paths: PathResolution.Always);
        Add("hub_model_id", Text, "Hugging Face repo (owner/name) to push the trained adapter or model to, with a README model card (see [hub](hub.md)). Needs a write token (HF_TOKEN).",
            defaultText: "null (no push)");
        Add("hub_strategy", Choice, "When to push to hub_model_id: end (once, after training), every_save (the output folder at every checkpoint save and at the end), " +
            "checkpoint (every_save plus the latest checkpoint as last-checkpoint/), all_checkpoints (every checkpoint-N/ folder too).", choice: typeof(HubStrategy));
        Add("hub_private_repo", Bool, "Create hub_model_id as a private repo (an existing repo keeps its visibility).");
        Add("strict", Bool, "false accepts unknown keys with a warning (they have no effect); otherwise an unknown key is an error, as in --set.",
            defaultText: "true (an unknown key is an error)");

        section = "Multi-process training";
        Add("deepspeed", Text, "DeepSpeed config as a JSON file (relative to the config file) or an inline mapping: zero_optimization.stage 0–2 and offload_optimizer.device map to SharpTune's data parallel / ZeRO-1/2 (see [distributed](distributed.md)); any option it cannot honour is an error naming it.",
            paths: PathResolution.IfExists, mapping: true);
        Add("fsdp", StringList, "FSDP options: full_shard (ZeRO-3), shard_grad_op (ZeRO-2), no_shard (DDP), auto_wrap; offload (FSDP parameter offload) and hybrid_shard are refused by this build (offload_optimizer: cpu offloads the optimizer).");
        Add("fsdp_config", Text, "FSDP settings mapping (sharding_strategy, offload_params, auto_wrap_policy, transformer_layer_cls_to_wrap, state_dict_type, …; fsdp_ prefixes accepted).",
            mapping: true);
        Add("fsdp_version", Integer, "FSDP API version, 1 or 2 (both map to the same sharding).", range: new NumberRange(1, true, 2, true));
        Add("ddp_timeout", Integer, "Seconds a collective may wait for the other ranks (a crashed, killed or hung rank) before every rank stops with an error.", range: AtLeast1);
        Add("ddp_bucket_cap_mb", Number, "Gradient bucket size in MiB for the all-reduce / reduce-scatter.", range: Positive);
        Add("offload_optimizer", Choice, "cpu keeps the optimizer state (and the float32 weights it updates) in host memory and runs the optimizer step there while the model trains on the GPU, as DeepSpeed's zero_optimization.offload_optimizer.device cpu (which sets it too). On a CPU run it is the same as none.", choice: typeof(OptimizerOffload));
        Add("ddp_find_unused_parameters", Bool, "Accepted either way: a parameter without a gradient in a step takes part in the reduction with zeros.");

        section = "Preference training";
        Add("rl", Choice, "Preference objective (dpo, orpo, simpo, kto: preference-format datasets) or online RL (grpo: prompt datasets, see trl); null means supervised fine-tuning.", choice: typeof(RlType));
        Add("rl_beta", Number, "Beta of the DPO/SimPO/KTO loss (temperature of the implicit reward).", range: Positive);
        Add("dpo_loss_type", Choice, "DPO loss variant.", choice: typeof(DpoLossType));
        Add("dpo_label_smoothing", Number, "Conservative DPO: assumed probability that a preference label is flipped.",
            range: new NumberRange(0, true, 0.5, false));
        Add("orpo_alpha", Number, "Weight of the odds-ratio term in ORPO.", range: Positive);
        Add("simpo_gamma", Number, "SimPO target reward margin.", range: AtLeast0);
        Add("kto_desirable_weight", Number, "KTO weight of desirable examples.", range: Positive);
        Add("kto_undesirable_weight", Number, "KTO weight of undesirable examples.", range: Positive);
        Add("precompute_ref_log_probs", Bool, "Compute the reference model's log-probs once before training instead of every step.");

        section = "Online RL (GRPO)";
        Add("trl", Section, "GRPO settings under TRL's GRPOConfig names (rl: grpo); see [trl entries](#trl-entries). A trl key this build does not support is an error naming it.",
            subKeys: TrlKeys, defaultText: "{}");
        Add("reward_command", Text, "Executable (relative to the config file) scoring completions as a reward function named command, after those of trl.reward_funcs: JSON lines {prompt, completion, row} on stdin, one number per line on stdout.",
            paths: PathResolution.IfExists);
        Add("reward_command_timeout", Number, "Seconds reward_command may take per batch before the run stops with an error naming it.", range: Positive);
        Add("reward_answer_field", Text, "Dataset field holding the reference answer that exact_match compares with.");
        Add("reward_answer_extraction", Choice, "How exact_match takes the final answer out of a completion (docs/rl.md): auto (<answer> tags, else \\boxed{}, else text after ####, else the last number when the reference is a number, else the whole text), answer_tag, boxed, hash, last_number, full.",
            choice: typeof(AnswerExtraction));
        Add("reward_regex", Text, "Pattern the whole completion must match for regex_match to give 1 (.NET regex, . matches newlines).");
        Add("reward_format_tags", StringList, "Tags tag_format expects, in order, each once as <tag>…</tag>, with only whitespace around them.");
        Add("reward_soft_punish_cache", Integer, "length_penalty (DAPO's soft overlong punishment): completions longer than trl.max_completion_length minus this many tokens lose linearly up to 1.",
            range: AtLeast1, defaultText: "trl.max_completion_length / 4");

        AddAxolotlKeys(keys);
        Attach(keys, typeof(TrainConfig));
        return keys;
    }

    private static IReadOnlyList<ConfigKey> BuildTrlKeys()
    {
        var keys = new List<ConfigKey>();
        void Add(string name, ConfigValueType type, string doc, Type? choice = null, NumberRange? range = null, string? defaultText = null,
            Dictionary<string, (string, string?)>? valueAliases = null) =>
            keys.Add(new ConfigKey
            {
                Name = name, Type = type, Doc = doc, Section = "trl entries", EnumType = choice, Range = range, DefaultText = defaultText,
                ValueAliases = valueAliases ?? new(),
            });
        Add("num_generations", Integer, "Completions sampled per prompt (the group size G); micro_batch_size must be a multiple of it.", range: NumberRange.AtLeast(2));
        Add("max_completion_length", Integer, "Most new tokens per completion.", range: AtLeast1);
        Add("max_prompt_length", Integer, "Prompts longer than this keep their last this many tokens.", range: AtLeast1, defaultText: "null (whole prompt)");
        Add("temperature", Number, "Sampling temperature; the policy's log-probs are taken at the same temperature, as TRL does.", range: Positive);
        Add("top_p", Number, "Nucleus sampling threshold.", range: new NumberRange(0, false, 1, true));
        Add("top_k", Integer, "Keep the k most likely tokens when sampling; 0 keeps all.", range: AtLeast0);
        Add("min_p", Number, "Minimum token probability relative to the most likely one.", range: new NumberRange(0, true, 1, true), defaultText: "null (off)");
        Add("repetition_penalty", Number, "Penalty on tokens already in the prompt or completion while sampling.", range: Positive);
        Add("beta", Number, "Weight of the k3 KL estimate to the reference model; 0 skips the reference pass.", range: AtLeast0);
        Add("epsilon", Number, "Lower clip range: ratios below 1 − epsilon stop counting for negative advantages.", range: Positive);
        Add("epsilon_high", Number, "Upper clip range (DAPO's clip-higher): ratios above 1 + epsilon_high stop counting for positive advantages.", range: Positive, defaultText: "epsilon");
        Add("loss_type", Choice, "Token normalisation: grpo (mean per completion, then over completions), bnpo (over the micro-batch's completion tokens), dr_grpo (over completions × max_completion_length), dapo (over the completion tokens of the whole optimizer step).",
            choice: typeof(GrpoLossType));
        Add("scale_rewards", Choice, "Divide advantages by the reward std of the group (true = group), of the micro-batch (batch), or not (none = false); std + 1e-4.",
            choice: typeof(ScaleRewardsMode), valueAliases: new() { ["true"] = ("group", null), ["false"] = ("none", null) });
        Add("num_iterations", Integer, "Optimizer steps per generation (μ): completions and their old-policy log-probs are reused this many times.", range: AtLeast1);
        Add("reward_funcs", StringList, "Built-in reward functions: exact_match, regex_match, tag_format, think_format, json_valid, length_penalty (docs/rl.md). reward_command adds one more.");
        Add("reward_weights", NumberList, "Weight of each reward function, in order (with reward_command last).", defaultText: "1 each");
        Add("mask_truncated_completions", Bool, "Leave completions that hit max_completion_length without EOS out of the loss.");
        Add("log_completions", Bool, "Print sampled completions with their rewards at each logging step (they are logged at eval steps regardless).");
        Add("num_completions_to_print", Integer, "How many completions log_completions and the eval-step log print.", range: AtLeast1, defaultText: "3");
        Add("use_vllm", Bool, "Accepted as false only: completions are sampled by SharpTune's own batched generator.");
        Attach(keys, typeof(TrlConfig));
        return keys;
    }

    private static IReadOnlyList<ConfigKey> BuildDatasetKeys()
    {
        var keys = new List<ConfigKey>();
        void Add(string name, ConfigValueType type, string doc, Type? choice = null, NumberRange? range = null,
            string? defaultText = null, PathResolution paths = PathResolution.None, string? mappingRefusal = null) =>
            keys.Add(new ConfigKey
            {
                Name = name, Type = type, Doc = doc, Section = "Dataset entries", EnumType = choice, Range = range,
                DefaultText = defaultText, Paths = paths, MappingRefusal = mappingRefusal,
            });

        Add("path", Text, "Local file or folder (relative to the config file), or a Hugging Face dataset id. Required.",
            paths: PathResolution.IfExists);
        Add("type", Text, "Row format. Supervised: " + string.Join(", ", SftDatasetTypes) +
            ". Paired preference (rl: dpo, orpo, simpo, kto): " + string.Join(", ", PairedPreferenceDatasetTypes) +
            ". Unpaired preference (rl: kto): " + string.Join(", ", UnpairedPreferenceDatasetTypes) +
            ". Prompts for online RL (rl: grpo): " + string.Join(", ", PromptDatasetTypes) + ". Required.",
            mappingRefusal: "axolotl's user-defined formats (field_instruction/format/…, field_prompt/prompt_format/…) are not implemented; " +
                            "name a format instead (alpaca, chat_template with field_messages, chat_template.default with field_chosen/field_rejected, preference)");
        Add("ds_type", Choice, "File format when the extension does not tell.", choice: typeof(DatasetFileType),
            defaultText: "from the file extension");
        Add("data_files", StringList, "Files inside path (or the hub dataset) to read; a string or a list.", defaultText: "all");
        Add("split", Text, "Split to read, with optional slices as in the datasets library: train, train[:2000], train[10%:20%], train[-500:], train[:50%]+test[:50%].");
        Add("name", Text, "Dataset configuration name (hub datasets): the NAME/ or data/NAME/ folder, or the configuration of the parquet conversion.");
        Add("revision", Text, "Branch, tag or commit of a Hugging Face dataset repo.", defaultText: "main");
        Add("field", Text, "Field holding the text (completion, pretrain), or a nested object holding the rows.");
        Add("text_column", Text, "Field holding the text of pretraining_dataset rows (axolotl's name; field works too).", defaultText: "text");
        Add("field_messages", Text, "Field holding the list of messages.", defaultText: "messages (conversations for sharegpt)");
        Add("field_instruction", Text, "Instruction field (alpaca).", defaultText: "instruction");
        Add("field_input", Text, "Input field (alpaca).", defaultText: "input");
        Add("field_output", Text, "Output field (alpaca).", defaultText: "output");
        Add("field_system", Text, "System prompt field.", defaultText: "system");
        Add("field_chosen", Text, "Chosen response field (preference formats).", defaultText: "chosen");
        Add("field_rejected", Text, "Rejected response field (preference formats).", defaultText: "rejected");
        Add("message_property_mappings", StringMap, "Names of the message properties in the rows, e.g. {role: from, content: value}.",
            defaultText: "{role: role, content: content}");
        Add("roles_to_train", StringList, "Roles whose turns carry loss.", defaultText: "[assistant]");
        Add("train_on_eos", Choice, "Which end-of-turn tokens carry loss: all, turn (those of trained turns), last, none.",
            choice: typeof(TrainOnEos), defaultText: "turn");
        Add("train_on_eot", Choice, "Which eot_tokens carry loss: all, turn (those closing trained turns), last, none. Used with the top-level eot_tokens.",
            choice: typeof(TrainOnEos), defaultText: "train_on_eos");
        Add("message_field_training", Text, "Message property holding a per-turn true/false that overrides roles_to_train for that turn.", defaultText: "training");
        Add("drop_system_message", Bool, "Drop the conversation's first message when it is a system message.");
        Add("chat_template", Text, "Chat template for this dataset (same values as the top-level chat_template).", defaultText: "the top-level chat_template");
        Add("chat_template_jinja", Text, "Jinja template text, or a path to a .jinja file, for this dataset's chat_template: jinja (as in axolotl, the top-level chat_template_jinja is not used for a dataset that names its own chat_template).",
            paths: PathResolution.IfExists);
        Add("roles", RolesMap, "Role names in the rows for each template role, e.g. {user: [human, user], assistant: [gpt]}.");
        Add("weight", Number, "Sampling weight when mixing datasets.", range: Positive, defaultText: "1");
        Add("shards", Integer, "Accepted for compatibility: read the dataset in this many shards.", range: AtLeast1);

        Attach(keys, typeof(DatasetConfig));
        return keys;
    }

    /// <summary>Links each key to its property and checks the table and the record agree (a mismatch is a programming error).</summary>
    private static void Attach(List<ConfigKey> keys, Type record)
    {
        var twice = keys.SelectMany(k => k.KeyAliases.Prepend(k.Name)).GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (twice.Count > 0) throw new InvalidOperationException($"config keys declared twice: {string.Join(", ", twice)}");
        foreach (var key in keys.Where(k => k.Type is not (ConfigValueType.Ignored or ConfigValueType.Refused)))
        {
            var property = record.GetProperty(ConfigNames.ToPascal(key.Name), BindingFlags.Public | BindingFlags.Instance)
                ?? throw new InvalidOperationException($"{record.Name} has no property for config key '{key.Name}'");
            var t = System.Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
            bool fits = key.Type switch
            {
                Bool => t == typeof(bool),
                Integer => t == typeof(int),
                Number => t == typeof(double),
                ConfigValueType.Text => t == typeof(string),
                Choice => t == key.EnumType,
                StringList => t == typeof(IReadOnlyList<string>),
                StringMap => t == typeof(IReadOnlyDictionary<string, string>),
                NumberList => t == typeof(IReadOnlyList<double>),
                Section => t == typeof(TrlConfig),
                RolesMap => t == typeof(IReadOnlyDictionary<string, IReadOnlyList<string>>),
                DatasetList => t == typeof(IReadOnlyList<DatasetConfig>),
                _ => false,
            };
            if (!fits) throw new InvalidOperationException($"config key '{key.Name}' is {key.Type} but {record.Name}.{property.Name} is {t.Name}");
            key.Property = property;
        }
        var mapped = keys.Select(k => k.Property).Where(p => p != null).ToHashSet();
        var missing = record.GetProperties().Where(p => p.CanWrite && !mapped.Contains(p) && !p.IsDefined(typeof(NotAConfigKeyAttribute), false)).Select(p => p.Name).ToList();
        if (missing.Count > 0) throw new InvalidOperationException($"{record.Name} properties without a config key: {string.Join(", ", missing)}");
    }
}
