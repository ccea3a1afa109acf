namespace SharpTune.Config;

// Each property marked [Key] is one config key, declared once: ConfigSchema reads its name (snake_case of the property),
// type, default (the initializer), allowed values and doc from here; the loader, --set, the YAML writer and
// docs/config.md all come from that table. The order of the properties is the order of docs/config.md.

/// <summary>One training run, as written in an axolotl-style YAML/JSON file. Null means "not set".</summary>
public sealed record TrainConfig
{
    [Section("Model")]
    [Key("Model folder in Hugging Face layout (relative to the config file) or a Hugging Face repo id. Required.", Paths = PathResolution.IfExists)]
    public string? BaseModel { get; init; }
    [Key("Branch, tag or commit of base_model when it is a Hugging Face repo id.", Default = "main")]
    public string? RevisionOfModel { get; init; }
    [Key("Folder whose config.json is used instead of base_model's.", Default = "base_model", Paths = PathResolution.IfExists)]
    public string? BaseModelConfig { get; init; }
    [Key("Folder holding tokenizer.json and tokenizer_config.json.", Default = "base_model", Paths = PathResolution.IfExists)]
    public string? TokenizerConfig { get; init; }
    [Key("A causal-LM class (AutoModelForCausalLM, LlamaForCausalLM, ...; a ...ForConditionalGeneration class trains its language model); the architecture comes from config.json. A classification head (...ForSequenceClassification, ...ForTokenClassification) is refused.")]
    public string? ModelType { get; init; }
    [Key("axolotl plugins. Those that only swap kernels or loggers (LigerPlugin, CutCrossEntropyPlugin, KernelsPlugin, SwanLabPlugin, ExpertParallelPlugin) are accepted and not used here; any other plugin is refused by name.")]
    public IReadOnlyList<string> Plugins { get; init; } = [];
    [Key("Accepted for compatibility (e.g. AutoTokenizer); the tokenizer comes from tokenizer.json.")]
    public string? TokenizerType { get; init; }
    [Key("Accepted for compatibility; SharpTune never runs code from a model repo.")]
    public bool TrustRemoteCode { get; init; }
    [Key("Mixture-of-experts models (mixtral, qwen3_moe): add router_aux_loss_coef (config.json) × the load-balancing loss to the training loss.", Default = "config.json's output_router_logits")]
    public bool? OutputRouterLogits { get; init; }
    [Key("Compute device. auto picks CUDA when available, else CPU.", Pattern = @"^(auto|cpu|cuda(:\d+)?)$", PatternText = "auto, cpu, cuda or cuda:N")]
    public string Device { get; init; } = "auto";

    [Section("Data")]
    [Key("Training datasets; see [Dataset entries](#dataset-entries). Required.")]
    public IReadOnlyList<DatasetConfig> Datasets { get; init; } = [];
    [Key("Evaluation datasets, used instead of splitting val_set_size off the training data.")]
    public IReadOnlyList<DatasetConfig> TestDatasets { get; init; } = [];
    [Key("Streamed pretraining text instead of datasets: entries with path (local or hub), name, split, data_files, " +
            "text_column (or field; default text) and type pretrain. Read in order as training consumes it, each document tokenized with EOS appended " +
            "and cut into rows of sequence_len; nothing is cached. Needs max_steps; evaluation comes from test_datasets (docs/datasets.md).")]
    public IReadOnlyList<DatasetConfig> PretrainingDataset { get; init; } = [];
    [Key("Held-out part of the training data for evaluation: a fraction in [0, 1) or a whole row count.", Range = "≥ 0")]
    public double ValSetSize { get; init; }
    [Key("Folder for the tokenized (and packed) dataset cache.", Default = "output_dir/prepared", Paths = PathResolution.Always)]
    public string? DatasetPreparedPath { get; init; }
    [Key("Shuffle the rows after merging all datasets.")]
    public bool ShuffleMergedDatasets { get; init; } = true;
    [Key("Drop rows whose token ids and labels equal an earlier row's (counted in a warning).")]
    public bool DatasetExactDeduplication { get; init; }
    [Key("Accepted for compatibility; data loading runs in-process.", Range = "≥ 1")]
    public int? DatasetProcesses { get; init; }
    [Key("Accepted for compatibility; data loading runs in-process.", Range = "≥ 0")]
    public int? DataloaderNumWorkers { get; init; }
    [Key("Maximum tokens per training sequence.", Range = "≥ 1")]
    public int SequenceLen { get; init; } = 512;
    [Key("What happens to rows longer than sequence_len.")]
    public ExcessLengthStrategy ExcessLengthStrategy { get; init; } = ExcessLengthStrategy.Drop;
    [Key("Pack several rows into each sequence; attention and positions stay within each row.")]
    public bool SamplePacking { get; init; }
    [Key("Pack evaluation rows too.", Default = "sample_packing")]
    public bool? EvalSamplePacking { get; init; }
    [Key("Pad every batch to sequence_len (fixed shapes).")]
    public bool PadToSequenceLen { get; init; }
    [Key("Also compute the loss on prompt tokens (otherwise only on responses).")]
    public bool TrainOnInputs { get; init; }

    [Section("Tokenizer and chat template")]
    [Key("Chat template: one of axolotl's named templates ({=axolotl_chat_templates}; texts identical to axolotl's), SharpTune's {=sharptune_chat_templates}" +
            ", tokenizer_default (the tokenizer's own), tokenizer_default_fallback_NAME (the tokenizer's own, else NAME) or jinja (chat_template_jinja). Any other value is refused by validate.", Default = "tokenizer_default")]
    public string? ChatTemplate { get; init; }
    [Key("Jinja chat template text, or a path to a .jinja file, used with chat_template: jinja.", Paths = PathResolution.IfExists)]
    public string? ChatTemplateJinja { get; init; }
    [Key("Special tokens to set or add: bos_token, eos_token, pad_token, unk_token.")]
    public IReadOnlyDictionary<string, string> SpecialTokens { get; init; } = new Dictionary<string, string>();
    [Key("Extra tokens to add to the vocabulary (embeddings grow to match). The old mapping form (tokens: {bos_token: ...}) is read as special_tokens.")]
    public IReadOnlyList<string> Tokens { get; init; } = [];
    [Key("End-of-turn tokens of chat datasets (each must be one token of the tokenizer and appear in the chat template); their labels follow each dataset's train_on_eot, the eos_token's follow train_on_eos, as in axolotl.", Default = "null (the eos_token and the template's known end-of-turn tokens, following train_on_eos)")]
    public IReadOnlyList<string> EotTokens { get; init; } = [];

    [Section("Adapter (LoRA, DoRA, QLoRA)")]
    [Key("lora or qlora trains an adapter over frozen base weights; null trains all weights.")]
    public AdapterType? Adapter { get; init; }
    [Key("Folder of an existing PEFT adapter to continue training from.", Paths = PathResolution.IfExists)]
    public string? LoraModelDir { get; init; }
    [Key("LoRA rank. Required when adapter is set.", Range = "≥ 1")]
    public int? LoraR { get; init; }
    [Key("LoRA alpha; the update is scaled by alpha / r (alpha / sqrt(r) with rsLoRA).", Range = "≥ 1", Default = "lora_r")]
    public int? LoraAlpha { get; init; }
    [Key("Dropout applied to the LoRA input.", Range = "[0, 1)")]
    public double LoraDropout { get; init; }
    [Key("Module names to adapt, e.g. [q_proj, k_proj, v_proj, o_proj].")]
    public IReadOnlyList<string> LoraTargetModules { get; init; } = [];
    [Key("Adapt every linear layer except lm_head.")]
    public bool LoraTargetLinear { get; init; }
    [Key("Modules trained in full and saved with the adapter, e.g. [embed_tokens, lm_head].")]
    public IReadOnlyList<string> LoraModulesToSave { get; init; } = [];
    [Key("Accepted for compatibility; the supported families use plain linear layers.")]
    public bool LoraFanInFanOut { get; init; }
    [Key("DoRA: learn a magnitude vector on top of the LoRA direction update.")]
    public bool PeftUseDora { get; init; }
    [Key("rsLoRA: scale the update by alpha / sqrt(r).")]
    public bool PeftUseRslora { get; init; }
    [Key("Quantize the frozen base weights to 4 bits (QLoRA). Needs adapter: qlora.", Default = "true with adapter: qlora, else false")]
    public bool LoadIn4bit { get; init; }
    [Key("Quantize the frozen base weights to int8. Needs adapter: lora.")]
    public bool LoadIn8bit { get; init; }
    [Key("4-bit data type.")]
    public QuantType4Bit Bnb4bitQuantType { get; init; } = QuantType4Bit.Nf4;
    [Key("Quantize the per-block scales of 4-bit weights as well.")]
    public bool Bnb4bitUseDoubleQuant { get; init; } = true;
    [Key("Dtype the 4-bit weights are dequantized to for matmuls.", Default = "the compute dtype (bf16/fp16/fp32)")]
    public ComputeDtype? Bnb4bitComputeDtype { get; init; }
    [Key("After training, merge the adapter into the base weights and save the model to output_dir/merged.")]
    [Alias("save_merged")]
    public bool MergeLora { get; init; }
    [Key("With merge_lora after QLoRA: a full-precision model folder to merge the adapter into instead of the dequantized 4-bit base.", Paths = PathResolution.IfExists)]
    public string? MergeIntoOriginal { get; init; }

    [Section("Batch, schedule and optimizer")]
    [Key("Rows per forward pass.", Range = "≥ 1")]
    public int MicroBatchSize { get; init; } = 1;
    [Key("Rows per evaluation forward pass.", Range = "≥ 1", Default = "micro_batch_size")]
    public int? EvalBatchSize { get; init; }
    [Key("Micro-batches per optimizer step; the loss is averaged over all their tokens.", Range = "≥ 1")]
    public int GradientAccumulationSteps { get; init; } = 1;
    [Key("Passes over the training data (fractions allowed). Ignored when max_steps ≥ 1.", Range = "[0, 100000]")]
    public double NumEpochs { get; init; } = 1;
    [Key("Optimizer steps to run; when ≥ 1 it overrides num_epochs (-1 or 0: train for num_epochs, as transformers' -1).", Range = "≥ -1")]
    public int? MaxSteps { get; init; }
    [Key("Peak learning rate (2e-4 and \"2e-4\" both accepted).", Range = "> 0")]
    public double LearningRate { get; init; } = 5e-5;
    [Key("Learning-rate schedule after warmup. cosine_with_min_lr needs cosine_min_lr_ratio.")]
    public LrSchedulerType LrScheduler { get; init; } = LrSchedulerType.Cosine;
    [Key("Floor of the cosine schedule as a fraction of learning_rate.", Range = "[0, 1]", Default = "null (decay to 0)")]
    public double? CosineMinLrRatio { get; init; }
    [Key("Steps of linear warmup from 0 to learning_rate; a value below 1 is a fraction of the total steps (as transformers reads warmup_steps: 0.1).", Range = "≥ 0", Default = "null (0)")]
    public double? WarmupSteps { get; init; }
    [Key("Linear warmup as a fraction of the total steps (instead of warmup_steps).", Range = "[0, 1)")]
    public double? WarmupRatio { get; init; }
    [Key("Optimizer. adamw_torch, adamw_torch_fused, adamw_hf and adamw are the same AdamW (decoupled weight decay, bias correction); paged_adamw_32bit too (paging only moves memory). " +
            "adamw_8bit (also adamw_bnb_8bit, paged_adamw_8bit, adamw_torch_8bit) is AdamW with both moments stored block-wise in 8 bits (blocks of 2048, bitsandbytes' dynamic map; 2 bytes of state per parameter instead of 8). " +
            "muon orthogonalises the momentum of 2-D weights by Newton–Schulz iteration and runs AdamW for the rest (embeddings, lm_head, norms, biases). adamw_torch_4bit is refused.")]
    public OptimizerType Optimizer { get; init; } = OptimizerType.AdamwTorch;
    [Key("Decoupled weight decay (not applied to biases and norm weights).", Range = "≥ 0")]
    public double WeightDecay { get; init; }
    [Key("Adam/AdamW/Lion beta1.", Range = "[0, 1)")]
    public double AdamBeta1 { get; init; } = 0.9;
    [Key("Adam/AdamW/Lion beta2.", Range = "[0, 1)")]
    public double AdamBeta2 { get; init; } = 0.999;
    [Key("Adam/AdamW epsilon.", Range = "> 0")]
    public double AdamEpsilon { get; init; } = 1e-8;
    [Key("Clip the global gradient L2 norm to this value; 0 disables clipping.", Range = "≥ 0")]
    public double MaxGradNorm { get; init; } = 1.0;
    [Key("NEFTune: add uniform noise scaled by alpha / sqrt(L·d) to input embeddings while training.", Range = "> 0", Default = "null (off)")]
    public double? NeftuneNoiseAlpha { get; init; }
    [Key("Seed for initialization, dropout, shuffling and splits.")]
    public int Seed { get; init; } = 42;

    [Section("Precision and memory")]
    [Key("bfloat16 compute: true, false, auto (bf16 on CUDA, and on CPUs with bf16 units) or full (bf16 weights too).")]
    public Bf16Mode Bf16 { get; init; } = Bf16Mode.Auto;
    [Key("float16 compute with loss scaling. Not with bf16: true.")]
    public bool Fp16 { get; init; }
    [Key("Allow TF32 matmuls on CUDA.")]
    public bool Tf32 { get; init; }
    [Key("Recompute activations during the backward pass to save memory. offload also keeps each checkpointed layer input in pinned host memory while training on CUDA (on the CPU it is the same as true). offload_disk is refused.")]
    public GradientCheckpointingMode GradientCheckpointing { get; init; }
    [Key("Full fine-tuning: only parameters whose name matches one of these regular expressions (re.match: anchored at the start) train; the rest stay frozen. e.g. ['^lm_head.weight$', 'model.layers.2[0-9]+.mlp.*'].", Default = "all parameters")]
    public IReadOnlyList<string> UnfrozenParameters { get; init; } = [];
    [Key("Accepted for compatibility; attention runs libtorch's scaled_dot_product_attention.")]
    public bool? FlashAttention { get; init; }
    [Key("Accepted for compatibility; attention runs libtorch's scaled_dot_product_attention.")]
    public bool? SdpAttention { get; init; }
    [Key("Accepted for compatibility; attention runs libtorch's scaled_dot_product_attention.")]
    public bool? XformersAttention { get; init; }

    [Section("Evaluation, checkpoints and logging")]
    [Key("Evaluate when a validation set exists (val_set_size > 0 or test_datasets).")]
    public bool DoEval { get; init; } = true;
    [Key("Evaluate every N optimizer steps.", Range = "≥ 1")]
    public int? EvalSteps { get; init; }
    [Key("SharpTune: before and after training, greedily complete the prompts of this many held-out rows and report how many reproduce their labelled answer exactly (0 = off).", Range = "≥ 0")]
    public int EvalExactMatchSamples { get; init; }
    [Key("Evaluations per epoch (instead of eval_steps); 0 = no evaluation during training.", Range = "≥ 0")]
    public int? EvalsPerEpoch { get; init; }
    [Key("Save a checkpoint every N optimizer steps.", Range = "≥ 1")]
    public int? SaveSteps { get; init; }
    [Key("Checkpoints per epoch (instead of save_steps).", Range = "≥ 1")]
    public int? SavesPerEpoch { get; init; }
    [Key("Keep the newest this many checkpoints (plus the one with the best eval loss); older ones are deleted.", Range = "≥ 1", Default = "null (keep all)")]
    public int? SaveTotalLimit { get; init; }
    [Key("Write weights as safetensors.")]
    public bool SaveSafetensors { get; init; } = true;
    [Key("Checkpoint folder to resume from (weights, optimizer, scheduler, RNG and data position).", Paths = PathResolution.IfExists)]
    public string? ResumeFromCheckpoint { get; init; }
    [Key("Resume from the newest checkpoint in output_dir when there is one.")]
    public bool AutoResumeFromCheckpoints { get; init; }
    [Key("Stop after this many evaluations without a lower validation loss.", Range = "≥ 1", Default = "null (off)")]
    public int? EarlyStoppingPatience { get; init; }
    [Key("Abort when the training loss stays above this value for loss_watchdog_patience steps.", Range = "> 0", Default = "null (off)")]
    public double? LossWatchdogThreshold { get; init; }
    [Key("Consecutive steps above loss_watchdog_threshold before aborting.", Range = "≥ 1")]
    public int LossWatchdogPatience { get; init; } = 3;
    [Key("Log metrics (metrics.jsonl, TensorBoard, console) every N optimizer steps.", Range = "≥ 1")]
    public int LoggingSteps { get; init; } = 1;
    [Key("Write TensorBoard event files to output_dir/runs.")]
    public bool UseTensorboard { get; init; } = true;
    [Key("Run folder for checkpoints, the adapter or model, and metrics (relative to the config file).", Paths = PathResolution.Always)]
    public string OutputDir { get; init; } = "./outputs";
    [Key("Hugging Face repo (owner/name) to push the trained adapter or model to, with a README model card (see [hub](hub.md)). Needs a write token (HF_TOKEN).", Default = "null (no push)")]
    public string? HubModelId { get; init; }
    [Key("When to push to hub_model_id: end (once, after training), every_save (the output folder at every checkpoint save and at the end), " +
            "checkpoint (every_save plus the latest checkpoint as last-checkpoint/), all_checkpoints (every checkpoint-N/ folder too).")]
    public HubStrategy HubStrategy { get; init; } = HubStrategy.End;
    [Key("Create hub_model_id as a private repo (an existing repo keeps its visibility).")]
    public bool HubPrivateRepo { get; init; }
    /// <summary>
    /// Hub token of a job request (input.credentials.hf_token); not a config key, never written back. Default: null
    /// (HF_TOKEN, then the token file).
    /// </summary>
    [NotAConfigKey]
    public string? HubToken { get; init; }
    [Key("false accepts unknown keys with a warning (they have no effect); otherwise an unknown key is an error, as in --set.", Default = "true (an unknown key is an error)")]
    public bool Strict { get; init; } = true;

    [Section("Multi-process training")]
    [Key("DeepSpeed config as a JSON file (relative to the config file) or an inline mapping: zero_optimization.stage 0–2 and offload_optimizer.device map to SharpTune's data parallel / ZeRO-1/2 (see [distributed](distributed.md)); any option it cannot honour is an error naming it.", Paths = PathResolution.IfExists, AcceptsMapping = true)]
    public string? Deepspeed { get; init; }
    [Key("FSDP options: full_shard (ZeRO-3), shard_grad_op (ZeRO-2), no_shard (DDP), auto_wrap; offload (FSDP parameter offload) and hybrid_shard are refused by this build (offload_optimizer: cpu offloads the optimizer).")]
    public IReadOnlyList<string>? Fsdp { get; init; }
    [Key("FSDP settings mapping (sharding_strategy, offload_params, auto_wrap_policy, transformer_layer_cls_to_wrap, state_dict_type, …; fsdp_ prefixes accepted).", AcceptsMapping = true)]
    public string? FsdpConfig { get; init; }
    [Key("FSDP API version, 1 or 2 (both map to the same sharding).", Range = "[1, 2]")]
    public int? FsdpVersion { get; init; }
    [Key("Seconds a collective may wait for the other ranks (a crashed, killed or hung rank) before every rank stops with an error.", Range = "≥ 1")]
    public int DdpTimeout { get; init; } = 60;
    [Key("Gradient bucket size in MiB for the all-reduce / reduce-scatter.", Range = "> 0")]
    public double DdpBucketCapMb { get; init; } = 25;
    [Key("cpu keeps the optimizer state (and the float32 weights it updates) in host memory and runs the optimizer step there while the model trains on the GPU, as DeepSpeed's zero_optimization.offload_optimizer.device cpu (which sets it too). On a CPU run it is the same as none.")]
    public OptimizerOffload OffloadOptimizer { get; init; } = OptimizerOffload.None;
    [Key("Accepted either way: a parameter without a gradient in a step takes part in the reduction with zeros.")]
    public bool? DdpFindUnusedParameters { get; init; }

    [Section("Preference training")]
    [Key("Preference objective (dpo, orpo, simpo, kto: preference-format datasets) or online RL (grpo: prompt datasets, see trl); null means supervised fine-tuning.")]
    public RlType? Rl { get; init; }
    [Key("Beta of the DPO/SimPO/KTO loss (temperature of the implicit reward).", Range = "> 0")]
    public double RlBeta { get; init; } = 0.1;
    [Key("DPO loss variant.")]
    public DpoLossType DpoLossType { get; init; } = DpoLossType.Sigmoid;
    [Key("Conservative DPO: assumed probability that a preference label is flipped.", Range = "[0, 0.5)")]
    public double DpoLabelSmoothing { get; init; }
    [Key("Weight of the odds-ratio term in ORPO.", Range = "> 0")]
    public double OrpoAlpha { get; init; } = 0.1;
    [Key("SimPO target reward margin.", Range = "≥ 0")]
    public double SimpoGamma { get; init; } = 0.5;
    [Key("KTO weight of desirable examples.", Range = "> 0")]
    public double KtoDesirableWeight { get; init; } = 1.0;
    [Key("KTO weight of undesirable examples.", Range = "> 0")]
    public double KtoUndesirableWeight { get; init; } = 1.0;
    [Key("Compute the reference model's log-probs once before training instead of every step.")]
    public bool PrecomputeRefLogProbs { get; init; }

    [Section("Online RL (GRPO)")]
    [Key("GRPO settings under TRL's GRPOConfig names (rl: grpo); see [trl entries](#trl-entries). A trl key this build does not support is an error naming it.", Default = "{}")]
    public TrlConfig Trl { get; init; } = new();
    [Key("Executable (relative to the config file) scoring completions as a reward function named command, after those of trl.reward_funcs: JSON lines {prompt, completion, row} on stdin, one number per line on stdout.", Paths = PathResolution.IfExists)]
    public string? RewardCommand { get; init; }
    [Key("Seconds reward_command may take per batch before the run stops with an error naming it.", Range = "> 0")]
    public double RewardCommandTimeout { get; init; } = 60;
    [Key("Dataset field holding the reference answer that exact_match compares with.")]
    public string RewardAnswerField { get; init; } = "answer";
    [Key("How exact_match takes the final answer out of a completion (docs/rl.md): auto (<answer> tags, else \\boxed{}, else text after ####, else the last number when the reference is a number, else the whole text), answer_tag, boxed, hash, last_number, full.")]
    public AnswerExtraction RewardAnswerExtraction { get; init; } = AnswerExtraction.Auto;
    [Key("Pattern the whole completion must match for regex_match to give 1 (.NET regex, . matches newlines).")]
    public string? RewardRegex { get; init; }
    [Key("Tags tag_format expects, in order, each once as <tag>…</tag>, with only whitespace around them.")]
    public IReadOnlyList<string> RewardFormatTags { get; init; } = ["think", "answer"];
    [Key("length_penalty (DAPO's soft overlong punishment): completions longer than trl.max_completion_length minus this many tokens lose linearly up to 1.", Range = "≥ 1", Default = "trl.max_completion_length / 4")]
    public int? RewardSoftPunishCache { get; init; }
}
