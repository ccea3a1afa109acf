namespace SharpTune.Config;

// Property names are the PascalCase form of axolotl's snake_case keys (lora_r → LoraR, load_in_4bit → LoadIn4bit);
// ConfigSchema maps them by that rule and documents every key. Initializers are the defaults.

/// <summary>One training run, as written in an axolotl-style YAML/JSON file. Null means "not set".</summary>
public sealed record TrainConfig
{
    // ---- model ----
    /// <summary>Model folder (HF layout) or Hugging Face repo id. Required.</summary>
    public string? BaseModel { get; init; }
    /// <summary>Branch, tag or commit of base_model when it is a hub repo. Default: main.</summary>
    public string? RevisionOfModel { get; init; }
    /// <summary>Folder whose config.json to use instead of base_model's. Default: base_model.</summary>
    public string? BaseModelConfig { get; init; }
    /// <summary>Folder holding tokenizer.json / tokenizer_config.json. Default: base_model.</summary>
    public string? TokenizerConfig { get; init; }
    /// <summary>A causal-LM class name (AutoModelForCausalLM, ...); the architecture comes from config.json. Default: null.</summary>
    public string? ModelType { get; init; }
    /// <summary>axolotl plugins; only kernel/logger plugins are accepted. Default: none.</summary>
    public IReadOnlyList<string> Plugins { get; init; } = [];
    /// <summary>Accepted for compatibility (e.g. AutoTokenizer); the tokenizer comes from tokenizer.json. Default: null.</summary>
    public string? TokenizerType { get; init; }
    /// <summary>Accepted for compatibility; no remote code is ever run. Default: false.</summary>
    public bool TrustRemoteCode { get; init; }
    /// <summary>Mixture-of-experts models: add router_aux_loss_coef × the load-balancing loss to the training loss. Default: config.json's output_router_logits.</summary>
    public bool? OutputRouterLogits { get; init; }
    /// <summary>Compute device: auto, cpu, cuda or cuda:N. Default: auto.</summary>
    public string Device { get; init; } = "auto";

    // ---- data ----
    /// <summary>Training datasets. Required.</summary>
    public IReadOnlyList<DatasetConfig> Datasets { get; init; } = [];
    /// <summary>Evaluation datasets (instead of splitting val_set_size off the training data). Default: none.</summary>
    public IReadOnlyList<DatasetConfig> TestDatasets { get; init; } = [];
    /// <summary>Streamed pretraining text (axolotl's pretraining_dataset), read as training consumes it; needs max_steps. Default: none.</summary>
    public IReadOnlyList<DatasetConfig> PretrainingDataset { get; init; } = [];
    /// <summary>Held-out part of the training data: a fraction in [0, 1) or a whole row count ≥ 1. Default: 0.</summary>
    public double ValSetSize { get; init; }
    /// <summary>Folder for the tokenized/packed dataset cache. Default: null (output_dir/prepared).</summary>
    public string? DatasetPreparedPath { get; init; }
    /// <summary>Shuffle rows after merging all datasets. Default: true.</summary>
    public bool ShuffleMergedDatasets { get; init; } = true;
    /// <summary>Drop exact duplicate rows (same ids and labels). Default: false.</summary>
    public bool DatasetExactDeduplication { get; init; }
    /// <summary>Accepted for compatibility (data loading runs in-process). Default: null.</summary>
    public int? DatasetProcesses { get; init; }
    /// <summary>Accepted for compatibility (data loading runs in-process). Default: null.</summary>
    public int? DataloaderNumWorkers { get; init; }
    /// <summary>Maximum tokens per training sequence. Default: 512.</summary>
    public int SequenceLen { get; init; } = 512;
    /// <summary>What to do with rows longer than sequence_len: drop or truncate. Default: drop.</summary>
    public ExcessLengthStrategy ExcessLengthStrategy { get; init; } = ExcessLengthStrategy.Drop;
    /// <summary>Pack several rows into each sequence (attention kept within each row). Default: false.</summary>
    public bool SamplePacking { get; init; }
    /// <summary>Pack evaluation rows too. Default: null (same as sample_packing).</summary>
    public bool? EvalSamplePacking { get; init; }
    /// <summary>Pad every batch to sequence_len. Default: false.</summary>
    public bool PadToSequenceLen { get; init; }
    /// <summary>Also compute the loss on prompt tokens. Default: false.</summary>
    public bool TrainOnInputs { get; init; }

    // ---- tokenizer and chat template ----
    /// <summary>Chat template: a named template (chatml, llama3, ...), tokenizer_default or jinja. Default: null.</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>Jinja chat template text, or a path to a .jinja file (used with chat_template: jinja). Default: null.</summary>
    public string? ChatTemplateJinja { get; init; }
    /// <summary>End-of-turn tokens whose labels follow train_on_eot. Default: none (eos and the template's known end-of-turn tokens).</summary>
    public IReadOnlyList<string> EotTokens { get; init; } = [];
    /// <summary>Special tokens to set or add, e.g. pad_token: "&lt;pad&gt;". Default: none.</summary>
    public IReadOnlyDictionary<string, string> SpecialTokens { get; init; } = new Dictionary<string, string>();
    /// <summary>Extra tokens to add to the vocabulary. Default: none.</summary>
    public IReadOnlyList<string> Tokens { get; init; } = [];

    // ---- adapter ----
    /// <summary>Adapter: lora, qlora, or null for full fine-tuning. Default: null.</summary>
    public AdapterType? Adapter { get; init; }
    /// <summary>Folder of an existing PEFT adapter to continue training. Default: null.</summary>
    public string? LoraModelDir { get; init; }
    /// <summary>LoRA rank. Required when adapter is set.</summary>
    public int? LoraR { get; init; }
    /// <summary>LoRA alpha (scale = alpha / r, or alpha / sqrt(r) with rsLoRA). Default: lora_r.</summary>
    public int? LoraAlpha { get; init; }
    /// <summary>Dropout on the LoRA input, in [0, 1). Default: 0.</summary>
    public double LoraDropout { get; init; }
    /// <summary>Module names to adapt (q_proj, v_proj, ...). Default: none.</summary>
    public IReadOnlyList<string> LoraTargetModules { get; init; } = [];
    /// <summary>Adapt every linear layer except lm_head. Default: false.</summary>
    public bool LoraTargetLinear { get; init; }
    /// <summary>Modules trained in full and saved with the adapter (embed_tokens, lm_head). Default: none.</summary>
    public IReadOnlyList<string> LoraModulesToSave { get; init; } = [];
    /// <summary>Accepted for compatibility; supported families use plain linear layers. Default: false.</summary>
    public bool LoraFanInFanOut { get; init; }
    /// <summary>DoRA: weight-decomposed LoRA. Default: false.</summary>
    public bool PeftUseDora { get; init; }
    /// <summary>rsLoRA: scale alpha / sqrt(r). Default: false.</summary>
    public bool PeftUseRslora { get; init; }
    /// <summary>Quantize the frozen base weights to 4 bits (QLoRA). Default: false (true with adapter: qlora).</summary>
    public bool LoadIn4bit { get; init; }
    /// <summary>Quantize the frozen base weights to int8. Default: false.</summary>
    public bool LoadIn8bit { get; init; }
    /// <summary>4-bit data type: nf4 or fp4. Default: nf4.</summary>
    public QuantType4Bit Bnb4bitQuantType { get; init; } = QuantType4Bit.Nf4;
    /// <summary>Quantize the 4-bit block scales too. Default: true.</summary>
    public bool Bnb4bitUseDoubleQuant { get; init; } = true;
    /// <summary>Dtype of 4-bit matmuls. Default: null (the training compute dtype).</summary>
    public ComputeDtype? Bnb4bitComputeDtype { get; init; }
    /// <summary>Merge the trained adapter into the base weights and save them to output_dir/merged. Default: false.</summary>
    public bool MergeLora { get; init; }
    /// <summary>Full-precision model folder the adapter is merged into (after QLoRA) instead of the dequantized base. Default: null.</summary>
    public string? MergeIntoOriginal { get; init; }

    // ---- batch and schedule ----
    /// <summary>Rows per forward pass. Default: 1.</summary>
    public int MicroBatchSize { get; init; } = 1;
    /// <summary>Rows per evaluation forward pass. Default: null (micro_batch_size).</summary>
    public int? EvalBatchSize { get; init; }
    /// <summary>Micro-batches per optimizer step. Default: 1.</summary>
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Passes over the training data (fractions allowed). Default: 1.</summary>
    public double NumEpochs { get; init; } = 1;
    /// <summary>Optimizer steps to run; overrides num_epochs when ≥ 1. Default: null.</summary>
    public int? MaxSteps { get; init; }
    /// <summary>Peak learning rate. Default: 5e-5.</summary>
    public double LearningRate { get; init; } = 5e-5;
    /// <summary>Learning-rate schedule after warmup. Default: cosine.</summary>
    public LrSchedulerType LrScheduler { get; init; } = LrSchedulerType.Cosine;
    /// <summary>Cosine floor as a fraction of learning_rate. Default: null (decay to 0).</summary>
    public double? CosineMinLrRatio { get; init; }
    /// <summary>Linear warmup steps; below 1, a fraction of the total steps. Default: null (0).</summary>
    public double? WarmupSteps { get; init; }
    /// <summary>Linear warmup as a fraction of total steps. Default: null.</summary>
    public double? WarmupRatio { get; init; }
    /// <summary>Optimizer. Default: adamw_torch.</summary>
    public OptimizerType Optimizer { get; init; } = OptimizerType.AdamwTorch;
    /// <summary>Decoupled weight decay. Default: 0.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Adam beta1. Default: 0.9.</summary>
    public double AdamBeta1 { get; init; } = 0.9;
    /// <summary>Adam beta2. Default: 0.999.</summary>
    public double AdamBeta2 { get; init; } = 0.999;
    /// <summary>Adam epsilon. Default: 1e-8.</summary>
    public double AdamEpsilon { get; init; } = 1e-8;
    /// <summary>Clip the global gradient norm to this value; 0 disables clipping. Default: 1.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>NEFTune: uniform noise on input embeddings scaled by alpha / sqrt(L·d). Default: null (off).</summary>
    public double? NeftuneNoiseAlpha { get; init; }
    /// <summary>Random seed for init, dropout, shuffling and splits. Default: 42.</summary>
    public int Seed { get; init; } = 42;

    // ---- precision and memory ----
    /// <summary>bfloat16 compute: true, false, auto (bf16 where the device has bf16 units) or full (bf16 weights too). Default: auto.</summary>
    public Bf16Mode Bf16 { get; init; } = Bf16Mode.Auto;
    /// <summary>float16 compute with loss scaling. Default: false.</summary>
    public bool Fp16 { get; init; }
    /// <summary>Allow TF32 matmuls on CUDA. Default: false.</summary>
    public bool Tf32 { get; init; }
    /// <summary>Recompute activations in the backward pass to save memory. Default: false.</summary>
    public GradientCheckpointingMode GradientCheckpointing { get; init; }
    /// <summary>Full fine-tune: regexes (matched at the start of the name) selecting the parameters that train. Default: none (all).</summary>
    public IReadOnlyList<string> UnfrozenParameters { get; init; } = [];
    /// <summary>Accepted for compatibility; attention uses libtorch's scaled_dot_product_attention. Default: null.</summary>
    public bool? FlashAttention { get; init; }
    /// <summary>Accepted for compatibility; attention uses libtorch's scaled_dot_product_attention. Default: null.</summary>
    public bool? SdpAttention { get; init; }
    /// <summary>Accepted for compatibility; attention uses libtorch's scaled_dot_product_attention. Default: null.</summary>
    public bool? XformersAttention { get; init; }

    // ---- multi-process training (docs/distributed.md) ----
    /// <summary>A DeepSpeed config: a JSON file path or the object itself (kept as JSON text): zero_optimization.stage, offload_optimizer.device. Default: null (DDP when launched on several ranks).</summary>
    public string? Deepspeed { get; init; }
    /// <summary>FSDP options: full_shard, shard_grad_op, no_shard, offload, auto_wrap. Default: null.</summary>
    public IReadOnlyList<string>? Fsdp { get; init; }
    /// <summary>FSDP settings (a mapping, kept as JSON text). Default: null.</summary>
    public string? FsdpConfig { get; init; }
    /// <summary>FSDP API version (1 or 2). Default: null.</summary>
    public int? FsdpVersion { get; init; }
    /// <summary>Seconds a collective may wait for the other ranks before every rank stops with an error. Default: 60.</summary>
    public int DdpTimeout { get; init; } = 60;
    /// <summary>Gradient bucket size in MiB for the reductions. Default: 25.</summary>
    public double DdpBucketCapMb { get; init; } = 25;
    /// <summary>Accepted either way: parameters without a gradient in a step always take part with zeros. Default: null.</summary>
    public bool? DdpFindUnusedParameters { get; init; }
    /// <summary>Optimizer state and step in host memory while the model is on the GPU (also set by deepspeed offload_optimizer.device cpu). Default: none.</summary>
    public OptimizerOffload OffloadOptimizer { get; init; } = OptimizerOffload.None;

    // ---- evaluation, saving, logging ----
    /// <summary>Run evaluation when a validation set exists. Default: true.</summary>
    public bool DoEval { get; init; } = true;
    /// <summary>Evaluate every N optimizer steps. Default: null.</summary>
    public int? EvalSteps { get; init; }
    /// <summary>Held-out rows whose prompts are completed greedily before and after training to report exact-match accuracy. Default: 0 (off).</summary>
    public int EvalExactMatchSamples { get; init; }
    /// <summary>Evaluations per epoch (alternative to eval_steps). Default: null.</summary>
    public int? EvalsPerEpoch { get; init; }
    /// <summary>Save a checkpoint every N optimizer steps. Default: null.</summary>
    public int? SaveSteps { get; init; }
    /// <summary>Checkpoints per epoch (alternative to save_steps). Default: null.</summary>
    public int? SavesPerEpoch { get; init; }
    /// <summary>Keep at most this many checkpoints (oldest deleted first). Default: null (keep all).</summary>
    public int? SaveTotalLimit { get; init; }
    /// <summary>Write weights as safetensors. Default: true.</summary>
    public bool SaveSafetensors { get; init; } = true;
    /// <summary>Checkpoint folder to resume from. Default: null.</summary>
    public string? ResumeFromCheckpoint { get; init; }
    /// <summary>Resume from the newest checkpoint in output_dir when there is one. Default: false.</summary>
    public bool AutoResumeFromCheckpoints { get; init; }
    /// <summary>Stop after this many evaluations without a better validation loss. Default: null (off).</summary>
    public int? EarlyStoppingPatience { get; init; }
    /// <summary>Abort when the training loss stays above this value for loss_watchdog_patience steps. Default: null (off).</summary>
    public double? LossWatchdogThreshold { get; init; }
    /// <summary>Steps above loss_watchdog_threshold before aborting. Default: 3.</summary>
    public int LossWatchdogPatience { get; init; } = 3;
    /// <summary>Log metrics every N optimizer steps. Default: 1.</summary>
    public int LoggingSteps { get; init; } = 1;
    /// <summary>Write TensorBoard event files to output_dir/runs. Default: true.</summary>
    public bool UseTensorboard { get; init; } = true;
    /// <summary>Run folder for checkpoints, adapter/model and metrics. Default: ./outputs.</summary>
    public string OutputDir { get; init; } = "./outputs";
    /// <summary>Hub repo (owner/name) the trained adapter or model is pushed to. Default: null (no push).</summary>
    public string? HubModelId { get; init; }
    /// <summary>When to push to hub_model_id: end, every_save, checkpoint or all_checkpoints. Default: end.</summary>
    public HubStrategy HubStrategy { get; init; } = HubStrategy.End;
    /// <summary>Create hub_model_id as a private repo. Default: false.</summary>
    public bool HubPrivateRepo { get; init; }
    /// <summary>
    /// Hub token of a job request (input.credentials.hf_token); not a config key, never written back. Default: null
    /// (HF_TOKEN, then the token file).
    /// </summary>
    [NotAConfigKey]
    public string? HubToken { get; init; }
    /// <summary>false: unknown keys warn instead of stopping. Default: true.</summary>
    public bool Strict { get; init; } = true;

    // ---- preference training ----
    /// <summary>Preference objective: dpo, orpo, simpo, kto, or null for supervised training. Default: null.</summary>
    public RlType? Rl { get; init; }
    /// <summary>Beta of the preference loss. Default: 0.1.</summary>
    public double RlBeta { get; init; } = 0.1;
    /// <summary>DPO loss: sigmoid, ipo or hinge. Default: sigmoid.</summary>
    public DpoLossType DpoLossType { get; init; } = DpoLossType.Sigmoid;
    /// <summary>Conservative DPO label smoothing, in [0, 0.5). Default: 0.</summary>
    public double DpoLabelSmoothing { get; init; }
    /// <summary>Weight of the odds-ratio term in ORPO. Default: 0.1.</summary>
    public double OrpoAlpha { get; init; } = 0.1;
    /// <summary>SimPO target reward margin. Default: 0.5.</summary>
    public double SimpoGamma { get; init; } = 0.5;
    /// <summary>KTO weight of desirable examples. Default: 1.</summary>
    public double KtoDesirableWeight { get; init; } = 1.0;
    /// <summary>KTO weight of undesirable examples. Default: 1.</summary>
    public double KtoUndesirableWeight { get; init; } = 1.0;
    /// <summary>Compute reference-model log-probs once before training. Default: false.</summary>
    public bool PrecomputeRefLogProbs { get; init; }

    // ---- online RL (GRPO) ----
    /// <summary>GRPO settings under TRL's names (the `trl:` mapping). Default: TRL's defaults.</summary>
    public TrlConfig Trl { get; init; } = new();
    /// <summary>Executable scoring completions (JSON lines in, one number per line out). Default: null.</summary>
    public string? RewardCommand { get; init; }
    /// <summary>Seconds reward_command may take per batch. Default: 60.</summary>
    public double RewardCommandTimeout { get; init; } = 60;
    /// <summary>Dataset field with the reference answer for exact_match. Default: answer.</summary>
    public string RewardAnswerField { get; init; } = "answer";
    /// <summary>How exact_match extracts the final answer. Default: auto.</summary>
    public AnswerExtraction RewardAnswerExtraction { get; init; } = AnswerExtraction.Auto;
    /// <summary>Pattern for regex_match (whole completion). Default: null.</summary>
    public string? RewardRegex { get; init; }
    /// <summary>Tags for tag_format, in order. Default: [think, answer].</summary>
    public IReadOnlyList<string> RewardFormatTags { get; init; } = ["think", "answer"];
    /// <summary>Soft-punishment zone of length_penalty in tokens. Default: null (max_completion_length / 4).</summary>
    public int? RewardSoftPunishCache { get; init; }
}

/// <summary>The `trl:` mapping: GRPO settings with TRL GRPOConfig's names and defaults.</summary>
public sealed record TrlConfig
{
    /// <summary>Completions per prompt (G). Default: 8.</summary>
    public int NumGenerations { get; init; } = 8;
    /// <summary>Most new tokens per completion. Default: 256.</summary>
    public int MaxCompletionLength { get; init; } = 256;
    /// <summary>Keep only the last this many prompt tokens. Default: null (all).</summary>
    public int? MaxPromptLength { get; init; }
    /// <summary>Sampling temperature (log-probs use it too). Default: 1.0.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Nucleus threshold. Default: 1.0.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>Top-k filter; 0 = off. Default: 0.</summary>
    public int TopK { get; init; }
    /// <summary>Min-p filter. Default: null.</summary>
    public double? MinP { get; init; }
    /// <summary>Repetition penalty while sampling. Default: 1.0.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;
    /// <summary>KL weight; 0 = no reference model. Default: 0.0.</summary>
    public double Beta { get; init; }
    /// <summary>Lower clip range. Default: 0.2.</summary>
    public double Epsilon { get; init; } = 0.2;
    /// <summary>Upper clip range. Default: null (epsilon).</summary>
    public double? EpsilonHigh { get; init; }
    /// <summary>Token normalisation of the loss. Default: dapo.</summary>
    public GrpoLossType LossType { get; init; } = GrpoLossType.Dapo;
    /// <summary>Advantage scaling by the reward std. Default: group.</summary>
    public ScaleRewardsMode ScaleRewards { get; init; } = ScaleRewardsMode.Group;
    /// <summary>Optimizer steps per generation (μ). Default: 1.</summary>
    public int NumIterations { get; init; } = 1;
    /// <summary>Built-in reward function names. Default: none.</summary>
    public IReadOnlyList<string> RewardFuncs { get; init; } = [];
    /// <summary>Weights of the reward functions. Default: none (1 each).</summary>
    public IReadOnlyList<double> RewardWeights { get; init; } = [];
    /// <summary>Exclude truncated completions from the loss. Default: false.</summary>
    public bool MaskTruncatedCompletions { get; init; }
    /// <summary>Print completions at each logging step. Default: false.</summary>
    public bool LogCompletions { get; init; }
    /// <summary>Completions printed per log. Default: null (3).</summary>
    public int? NumCompletionsToPrint { get; init; }
    /// <summary>Must stay false. Default: false.</summary>
    public bool UseVllm { get; init; }
}

/// <summary>One entry of datasets / test_datasets.</summary>
public sealed record DatasetConfig
{
    /// <summary>Local file or folder (relative to the config file), or a Hugging Face dataset id. Required.</summary>
    public string? Path { get; init; }
    /// <summary>Row format: alpaca, sharegpt, chat_template, completion, ... or a preference format. Required.</summary>
    public string? Type { get; init; }
    /// <summary>File format when the extension does not tell: json, jsonl, parquet, csv, text. Default: null.</summary>
    public DatasetFileType? DsType { get; init; }
    /// <summary>Files inside path (or the hub dataset) to read. Default: none (all).</summary>
    public IReadOnlyList<string> DataFiles { get; init; } = [];
    /// <summary>Split to read. Default: train.</summary>
    public string Split { get; init; } = "train";
    /// <summary>Branch, tag or commit of a hub dataset. Default: main.</summary>
    public string? Revision { get; init; }
    /// <summary>Dataset configuration name (hub datasets). Default: null.</summary>
    public string? Name { get; init; }
    /// <summary>Field holding the text (completion/pretrain) or a nested object holding the rows. Default: null.</summary>
    public string? Field { get; init; }
    /// <summary>Field holding the text of pretraining_dataset rows (axolotl's name for it). Default: null (field, else text).</summary>
    public string? TextColumn { get; init; }
    /// <summary>Field holding the conversation list. Default: messages (conversations for sharegpt).</summary>
    public string? FieldMessages { get; init; }
    /// <summary>Instruction field. Default: instruction.</summary>
    public string? FieldInstruction { get; init; }
    /// <summary>Input field. Default: input.</summary>
    public string? FieldInput { get; init; }
    /// <summary>Output field. Default: output.</summary>
    public string? FieldOutput { get; init; }
    /// <summary>System prompt field. Default: system.</summary>
    public string? FieldSystem { get; init; }
    /// <summary>Chosen-response field (preference data). Default: chosen.</summary>
    public string? FieldChosen { get; init; }
    /// <summary>Rejected-response field (preference data). Default: rejected.</summary>
    public string? FieldRejected { get; init; }
    /// <summary>Message property names: role/content → the names used in the rows (e.g. role: from, content: value). Default: none.</summary>
    public IReadOnlyDictionary<string, string> MessagePropertyMappings { get; init; } = new Dictionary<string, string>();
    /// <summary>Roles whose turns are trained on. Default: none (assistant).</summary>
    public IReadOnlyList<string> RolesToTrain { get; init; } = [];
    /// <summary>Which EOS tokens are trained on: all, turn, last or none. Default: null (turn).</summary>
    public TrainOnEos? TrainOnEos { get; init; }
    /// <summary>Which eot_tokens are trained on: all, turn, last or none. Default: null (train_on_eos).</summary>
    public TrainOnEos? TrainOnEot { get; init; }
    /// <summary>Message property with a per-turn training flag. Default: null (training).</summary>
    public string? MessageFieldTraining { get; init; }
    /// <summary>Drop a leading system message. Default: false.</summary>
    public bool DropSystemMessage { get; init; }
    /// <summary>Chat template for this dataset. Default: null (the top-level chat_template).</summary>
    public string? ChatTemplate { get; init; }
    /// <summary>Jinja template text or .jinja file for this dataset's chat_template: jinja. Default: null.</summary>
    public string? ChatTemplateJinja { get; init; }
    /// <summary>Role name mapping: target role → source role names. Default: none.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Roles { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    /// <summary>Sampling weight when mixing datasets. Default: null (1).</summary>
    public double? Weight { get; init; }
    /// <summary>Accepted for compatibility: split the dataset into this many shards. Default: null.</summary>
    public int? Shards { get; init; }
}

public enum AdapterType { Lora, Qlora }
public enum RlType { Dpo, Orpo, Simpo, Kto, Grpo }
public enum GrpoLossType { Grpo, Bnpo, DrGrpo, Dapo }
public enum ScaleRewardsMode { Group, Batch, None }
public enum AnswerExtraction { Auto, AnswerTag, Boxed, Hash, LastNumber, Full }
public enum LrSchedulerType { Cosine, Linear, Constant, ConstantWithWarmup, CosineWithMinLr }
public enum OptimizerType { AdamwTorch, AdamwTorchFused, AdamwHf, Adamw, Sgd, Adafactor, Lion, Adamw8bit, AdamwTorch4bit, Muon }
/// <summary>gradient_checkpointing: false, true, offload (checkpointed inputs in pinned host memory on CUDA), offload_disk (refused).</summary>
public enum GradientCheckpointingMode { False, True, Offload, OffloadDisk }
public enum Bf16Mode { False, True, Auto, Full }
public enum QuantType4Bit { Nf4, Fp4 }
public enum ComputeDtype { Float32, Bfloat16, Float16 }
public enum ExcessLengthStrategy { Drop, Truncate }
/// <summary>transformers' hub_strategy: what is pushed to hub_model_id and when.</summary>
public enum HubStrategy { End, EverySave, Checkpoint, AllCheckpoints }
public enum OptimizerOffload { None, Cpu }

/// <summary>Marks a TrainConfig property that is not read from the config file (the key table skips it).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NotAConfigKeyAttribute : Attribute;
public enum TrainOnEos { All, Turn, Last, None }
public enum DpoLossType { Sigmoid, Ipo, Hinge }
public enum DatasetFileType { Json, Jsonl, Parquet, Csv, Text }
