using SharpTune.Config;
using static SharpTune.Tests.ConfigTests.ConfigTestKit;

namespace SharpTune.Tests.ConfigTests;

/// <summary>axolotl keys: honoured, not used here (one line), or refused by name with what to do.</summary>
public sealed class AxolotlKeyTests
{
    private static IReadOnlyList<string> Problems(string yaml, params string[] overrides)
    {
        string path = Write(yaml);
        var e = Assert.ThrowsAny<InvalidInputException>(() => ConfigLoader.Load(path, overrides, _ => { }));
        return ConfigProblemsException.Of(e).Select(p => p.Replace(path + ": ", "")).ToList();
    }

    private static (TrainConfig Config, List<string> Warnings) Load(string yaml)
    {
        string path = Write(yaml);
        var warnings = new List<string>();
        var c = ConfigLoader.Load(path, [], warnings.Add);
        return (c, warnings.Select(w => w.Replace(path + ": ", "")).ToList());
    }

    [Fact]
    public void KeysThatDoNotChangeTrainingAreNamedOnceInOneLine()
    {
        var (_, warnings) = Load(Minimal + "wandb_project: demo\nwandb_entity:\nwandb_watch:\nuse_wandb: false\nattn_implementation: flash_attention_2\n" +
                                 "liger_rms_norm: true\nplugins:\n  - axolotl.integrations.liger.LigerPlugin\ntorch_compile: true\ngradient_checkpointing_kwargs:\n  use_reentrant: false\n");
        Assert.Equal(["not used here: wandb_project, attn_implementation, liger_rms_norm, torch_compile, gradient_checkpointing_kwargs, plugins"], warnings);
    }

    [Fact]
    public void UserDefinedDatasetFormatsAreRefusedByName()
    {
        var problems = Problems("base_model: org/model\nrl: dpo\ndatasets:\n  - path: data.jsonl\n    type:\n      field_prompt: prompt\n      prompt_format: \"{prompt}\"\n");
        Assert.Equal(["datasets.0.type: a mapping cannot be honoured: axolotl's user-defined formats (field_instruction/format/…, field_prompt/prompt_format/…) are not implemented; " +
                      "name a format instead (alpaca, chat_template with field_messages, chat_template.default with field_chosen/field_rejected, preference)"], problems);
    }

    [Fact]
    public void EmptyAndFalseValuesProduceNothing()
    {
        var (_, warnings) = Load(Minimal + "wandb_project:\nwandb_name:\nrelora: false\nlisa_n_layers:\ncosine_constant_lr_ratio: 0\npretrain_multipack_attn: true\nunfrozen_parameters:\n");
        Assert.Empty(warnings);
    }

    [Theory]
    [InlineData("lisa_n_layers: 4\n", "lisa_n_layers: 4 cannot be honoured: LISA (training a few randomly switched layers at a time) is not implemented; remove the lisa_* keys to train all layers, or use unfrozen_parameters to choose layers")]
    [InlineData("relora: true\n", "relora: true cannot be honoured: ReLoRA (periodic merge-and-restart of the adapter) is not implemented; remove relora and the relora_* / jagged_restart_* keys for plain LoRA")]
    [InlineData("jagged_restart_steps: 150\n", "jagged_restart_steps: 150 cannot be honoured: ReLoRA (periodic merge-and-restart of the adapter) is not implemented; remove relora and the relora_* / jagged_restart_* keys for plain LoRA")]
    [InlineData("peft:\n  loftq_config:\n    loftq_bits: 4\n", "peft: a mapping cannot be honoured: PEFT options beyond LoRA/DoRA/rsLoRA (LoftQ initialisation, torchao backends) are not implemented; remove peft (adapter: qlora quantizes with nf4)")]
    [InlineData("qat:\n  weight_dtype: int4\n", "qat: a mapping cannot be honoured: quantization-aware training and post-training quantization are not implemented; remove it (export with sharptune export --quantize)")]
    [InlineData("fp8: true\n", "fp8: true cannot be honoured: fp8 training is not implemented; remove it (bf16 is used where the device supports it)")]
    [InlineData("group_by_length: true\n", "group_by_length: true cannot be honoured: grouping rows of similar length into batches is not implemented (batches follow the seeded shuffle); remove it or set it to false")]
    [InlineData("cosine_constant_lr_ratio: 0.2\n", "cosine_constant_lr_ratio: 0.2 cannot be honoured: a constant phase before the cosine decay is not implemented; remove it (cosine_min_lr_ratio sets the floor)")]
    [InlineData("pretrain_multipack_attn: false\n", "pretrain_multipack_attn: false cannot be honoured: pretraining streams keep attention within each packed document; remove it or set it to true")]
    [InlineData("sample_packing_sequentially: true\n", "sample_packing_sequentially: true cannot be honoured: rows are packed in shuffled order; sequential packing and unshuffled curriculum order are not implemented — remove it")]
    [InlineData("resize_token_embeddings_to_32x: true\n", "resize_token_embeddings_to_32x: true cannot be honoured: resizing or re-initialising embeddings is not implemented (only tokens grows the vocabulary); remove it")]
    [InlineData("reward_model: true\n", "reward_model: true cannot be honoured: reward models and classification heads are not supported (SharpTune trains causal language models); remove it")]
    [InlineData("batch_size: 32\n", "batch_size: 32 cannot be honoured: batch_size is not derived here; set gradient_accumulation_steps = batch_size / micro_batch_size instead")]
    [InlineData("model_config:\n  rope_theta: 1000\n", "model_config.rope_theta: 1000 cannot be honoured: overriding config.json values is not supported (only output_router_logits is read); edit the model's config.json")]
    [InlineData("optimizer: adamw_torch_4bit\n", "optimizer: adamw_torch_4bit cannot be honoured: 4-bit optimizer state is not implemented; use adamw_8bit (8-bit state, 2 bytes per parameter) or adamw_torch")]
    [InlineData("gradient_checkpointing: offload_disk\n", "gradient_checkpointing: offload_disk cannot be honoured: activations are not written to disk; use offload (pinned host memory) or true")]
    [InlineData("plugins:\n  - axolotl.integrations.spectrum.SpectrumPlugin\n", "plugins: axolotl.integrations.spectrum.SpectrumPlugin cannot be honoured: axolotl plugins do not run here (accepted: LigerPlugin, CutCrossEntropyPlugin, KernelsPlugin, SwanLabPlugin, ExpertParallelPlugin, which only swap kernels or loggers); remove it")]
    [InlineData("model_type: AutoModelForSequenceClassification\n", "model_type: AutoModelForSequenceClassification cannot be honoured: SharpTune trains causal language models; use AutoModelForCausalLM (or remove model_type)")]
    [InlineData("unfrozen_parameters:\n  - 'lm_head.weight$[:32000]'\n", "unfrozen_parameters: 'lm_head.weight$[:32000]' cannot be honoured: row ranges of a parameter ([start:end]) are not supported; unfreeze whole parameters")]
    [InlineData("adapter: lora\nlora_r: 8\nunfrozen_parameters:\n  - lm_head\n", "unfrozen_parameters selects parameters of a full fine-tune but adapter is lora; remove it, or use lora_modules_to_save to train whole modules beside the adapter")]
    [InlineData("warmup_steps: 10.5\n", "warmup_steps: 10.5 is invalid; expected a whole number of steps, or a fraction below 1 of the total steps")]
    public void RefusedKeysStopWithTheirNameAndWhatToDo(string yaml, string expected)
    {
        Assert.Equal([expected], Problems(Minimal + yaml));
    }

    [Fact]
    public void EveryProblemIsListedTogetherWithCrossKeyChecks()
    {
        var problems = Problems(Minimal + "lisa_n_layers: 4\nlerning_rate: 1e-4\nrelora: true\nwarmup_steps: 5\nwarmup_ratio: 0.1\n");
        Assert.Equal(
        [
            "lisa_n_layers: 4 cannot be honoured: LISA (training a few randomly switched layers at a time) is not implemented; remove the lisa_* keys to train all layers, or use unfrozen_parameters to choose layers",
            "unknown key 'lerning_rate' (did you mean 'learning_rate'?); remove it, or set strict: false to accept unknown keys",
            "relora: true cannot be honoured: ReLoRA (periodic merge-and-restart of the adapter) is not implemented; remove relora and the relora_* / jagged_restart_* keys for plain LoRA",
            "warmup_steps: 5 and warmup_ratio: 0.1 are both set; expected one of them",
        ], problems);
        var (exit, _, err) = RunCli("validate", Write(Minimal + "lisa_n_layers: 4\nrelora: true\n"));
        Assert.Equal(2, exit);
        Assert.Contains("lisa_n_layers: 4 cannot be honoured", err);
        Assert.Contains("relora: true cannot be honoured", err);
    }

    [Fact]
    public void SuggestionsOnlyNameKeysThatAreRead()
    {
        // lisa_n_layer is one letter from a refused key and far from any honoured one: no suggestion.
        Assert.Equal(["unknown key 'lisa_n_layer'; remove it, or set strict: false to accept unknown keys"], Problems(Minimal + "lisa_n_layer: 2\n"));
        Assert.Equal(["--set lisa_n_layer=2: unknown key 'lisa_n_layer'"], Problems(Minimal, "lisa_n_layer=2").Select(p => p).ToList());
    }

    [Fact]
    public void StrictFalseTurnsUnknownKeysIntoWarningsButStillRefusesKnownOnes()
    {
        var (_, warnings) = Load(Minimal + "strict: false\nmy_custom_key: 1\n");
        Assert.Equal(["unknown key 'my_custom_key'"], warnings);
        Assert.Equal(["lisa_n_layers: 4 cannot be honoured: LISA (training a few randomly switched layers at a time) is not implemented; remove the lisa_* keys to train all layers, or use unfrozen_parameters to choose layers"],
            Problems(Minimal + "strict: false\nlisa_n_layers: 4\n"));
    }

    [Fact]
    public void NewTrainingKeysAreRead()
    {
        var (c, warnings) = Load(Minimal + "sequence_len: 500_000\nwarmup_steps: 0.1\nevals_per_epoch: 0\nlearning_rate: 1_0e-5\noptimizer: adamw_bnb_8bit\n" +
                                 "gradient_checkpointing: offload\nunfrozen_parameters:\n  - ^lm_head.weight$\n  - model.layers.1.mlp.*\n");
        Assert.Empty(warnings);
        Assert.Equal(500_000, c.SequenceLen);
        Assert.Equal(0.1, c.WarmupSteps);
        Assert.Equal(0, c.EvalsPerEpoch);
        Assert.Equal(1e-4, c.LearningRate);
        Assert.Equal(OptimizerType.Adamw8bit, c.Optimizer);
        Assert.Equal(GradientCheckpointingMode.Offload, c.GradientCheckpointing);
        Assert.Equal(["^lm_head.weight$", "model.layers.1.mlp.*"], c.UnfrozenParameters);
        foreach (var name in new[] { "adamw_8bit", "paged_adamw_8bit", "adamw_torch_8bit" })
            Assert.Equal(OptimizerType.Adamw8bit, Load(Minimal + $"optimizer: {name}\n").Config.Optimizer);
        Assert.Equal(OptimizerType.Muon, Load(Minimal + "optimizer: muon\n").Config.Optimizer);
        Assert.Equal(OptimizerType.AdamwTorch, Load(Minimal + "optimizer: paged_adamw_32bit\n").Config.Optimizer);
        Assert.Equal(GradientCheckpointingMode.True, Load(Minimal + "gradient_checkpointing: true\n").Config.GradientCheckpointing);
        Assert.Equal(10, SharpTune.Training.LrSchedule.Warmup(0.1, null, 100));
        Assert.Equal(7, SharpTune.Training.LrSchedule.Warmup(7, null, 100));
    }

    [Fact]
    public void LegacyTokensMappingIsSpecialTokens()
    {
        var (c, warnings) = Load(Minimal + "tokens:\n  bos_token: \"<s>\"\n  eos_token: \"</s>\"\nspecial_tokens:\n  pad_token: \"<pad>\"\n");
        Assert.Empty(warnings);
        Assert.Empty(c.Tokens);
        Assert.Equal("<s>", c.SpecialTokens["bos_token"]);
        Assert.Equal("</s>", c.SpecialTokens["eos_token"]);
        Assert.Equal("<pad>", c.SpecialTokens["pad_token"]);
        Assert.Equal(["tokens.bos_token and special_tokens.bos_token differ; tokens as a mapping is the old name of special_tokens, give the token once"],
            Problems(Minimal + "tokens:\n  bos_token: \"<s>\"\nspecial_tokens:\n  bos_token: \"<bos>\"\n"));
    }

    [Fact]
    public void ModelConfigOutputRouterLogitsIsRead()
    {
        var (c, warnings) = Load(Minimal + "model_config:\n  output_router_logits: true\n");
        Assert.Empty(warnings);
        Assert.True(c.OutputRouterLogits);
    }

    [Fact]
    public void RunPodRequestFieldsAreUnderstood()
    {
        string dir = TestPaths.TempDir();
        string path = Path.Combine(dir, "request.json");
        File.WriteAllText(path, """
            {"input": {"user_id": "user", "model_id": "llama-test", "run_id": "run-7",
              "credentials": {"wandb_api_key": "", "hf_token": "hf_secret"},
              "args": {"base_model": "org/model", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}}}
            """);
        var warnings = new List<string>();
        var c = ConfigLoader.Load(path, [], warnings.Add);
        Assert.Equal(Path.Combine(dir, "run-7"), c.OutputDir);   // run_id names the output folder when args has no output_dir
        Assert.Equal("hf_secret", c.HubToken);
        Assert.Equal([$"{path}: not used here: input.user_id, input.model_id"], warnings);

        File.WriteAllText(path, """
            {"input": {"run_id": "run-7", "args": {"base_model": "org/model", "output_dir": "./out", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}}}
            """);
        Assert.Equal(Path.Combine(dir, "out"), ConfigLoader.Load(path, [], _ => { }).OutputDir);

        File.WriteAllText(path, """
            {"input": {"run_id": "../x", "extra": 1, "credentials": {"wandb_api_key": "k"}, "args": {"base_model": "org/model", "datasets": [{"path": "d.jsonl", "type": "alpaca"}]}}}
            """);
        var e = Assert.Throws<ConfigProblemsException>(() => ConfigLoader.Load(path, [], _ => { }));
        Assert.Equal(3, e.Problems.Count);
        Assert.Contains(e.Problems, p => p.StartsWith($"{path}: input.run_id: \"../x\" is not allowed"));
        Assert.Contains($"{path}: input.extra: unknown field; expected user_id, model_id, run_id, credentials, args", e.Problems);
        Assert.Contains(e.Problems, p => p.StartsWith($"{path}: input.credentials.wandb_api_key: Weights & Biases is not supported"));
    }

    [Fact]
    public void EveryAxolotlSchemaKeyHasAClass()
    {
        // Keys of axolotl's config schema (utils/schemas/*.py) across its recent versions; none may be unknown here.
        string[] axolotl =
        [
            "strict", "resume_from_checkpoint", "auto_resume_from_checkpoints", "resize_token_embeddings_to_32x", "mean_resizing_embeddings",
            "shrink_embeddings", "embeddings_skip_upcast", "rl", "trl", "vllm", "qat", "quantization", "reward_model", "process_reward_model", "num_labels",
            "dpo_use_weighting", "dpo_use_logits_to_keep", "datasets", "test_datasets", "shuffle_merged_datasets", "dataset_prepared_path",
            "dataset_shard_num", "dataset_shard_idx", "skip_prepare_dataset", "dataset_processes", "dataset_exact_deduplication",
            "dataset_keep_in_memory", "dataloader_pin_memory", "dataloader_num_workers", "dataloader_prefetch_factor", "dataloader_drop_last",
            "accelerator_config", "remove_unused_columns", "push_dataset_to_hub", "hf_use_auth_token", "device", "device_map", "world_size",
            "local_rank", "ddp", "seed", "ddp_timeout", "ddp_bucket_cap_mb", "ddp_broadcast_buffers", "ddp_find_unused_parameters",
            "eval_table_size", "eval_max_new_tokens", "do_causal_lm_eval", "eval_causal_lm_metrics", "do_bench_eval", "bench_dataset", "bench_split",
            "metric_for_best_model", "greater_is_better", "loss_watchdog_threshold", "loss_watchdog_patience", "gc_steps", "bf16", "fp16", "fp8",
            "bfloat16", "float16", "tf32", "float32", "gradient_checkpointing", "gradient_checkpointing_kwargs", "unfrozen_parameters",
            "sequence_len", "min_sample_len", "max_prompt_len", "sample_packing", "sample_packing_group_size", "sample_packing_bin_size",
            "sample_packing_sequentially", "eval_sample_packing", "pad_to_sequence_len", "curriculum_sampling", "multipack_real_batches",
            "pretraining_sample_concatenation", "batch_flattening", "use_pose", "pose_split_on_token_ids", "pose_max_context_len", "pose_num_chunks",
            "pretrain_multipack_buffer_size", "pretrain_multipack_attn", "xformers_attention", "sdp_attention", "s2_attention", "flex_attention",
            "flex_attn_compile_kwargs", "flash_attention", "flash_attn_cross_entropy", "flash_attn_rms_norm", "flash_attn_fuse_qkv",
            "flash_attn_fuse_mlp", "flash_optimum", "eager_attention", "unsloth_cross_entropy_loss", "unsloth_lora_mlp", "unsloth_lora_qkv",
            "unsloth_lora_o", "unsloth_rms_norm", "unsloth_rope", "lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel", "llama4_linearized_experts",
            "deepspeed", "fsdp", "fsdp_config", "fsdp_final_state_dict_type", "val_set_size", "sequence_parallel_degree", "heads_k_stride",
            "ring_attn_func", "special_tokens", "tokens", "added_tokens_overrides", "torch_compile", "torch_compile_backend", "torch_compile_mode",
            "max_steps", "warmup_steps", "warmup_ratio", "eval_steps", "evals_per_epoch", "eval_strategy", "save_steps", "saves_per_epoch",
            "save_strategy", "save_total_limit", "logging_steps", "early_stopping_patience", "load_best_model_at_end", "save_only_model",
            "use_tensorboard", "profiler_steps", "include_tokens_per_second", "neftune_noise_alpha", "orpo_alpha", "rpo_alpha", "simpo_gamma",
            "cpo_alpha", "kto_desirable_weight", "kto_undesirable_weight", "rl_beta", "max_memory", "gpu_memory_limit", "low_cpu_mem_usage",
            "chat_template", "chat_template_jinja", "default_system_message", "fix_untrained_tokens", "is_preprocess",
            "preprocess_iterable", "total_num_tokens", "total_supervised_tokens", "sample_packing_eff_est", "axolotl_config_path",
            "is_falcon_derived_model", "is_llama_derived_model", "is_mistral_derived_model", "is_qwen_derived_model", "plugins",
            // training.py
            "gradient_accumulation_steps", "micro_batch_size", "batch_size", "eval_batch_size", "auto_find_batch_size", "train_on_inputs",
            "group_by_length", "learning_rate", "embedding_lr", "embedding_lr_scale", "weight_decay", "optimizer", "optim_args",
            "optim_target_modules", "torchdistx_path", "lr_scheduler", "lr_scheduler_kwargs", "lr_quadratic_warmup", "cosine_min_lr_ratio",
            "cosine_constant_lr_ratio", "lr_div_factor", "lr_groups", "adam_epsilon", "adam_epsilon2", "adam_beta1", "adam_beta2", "adam_beta3",
            "max_grad_norm", "num_epochs",
            // model.py
            "base_model", "base_model_config", "cls_model_config", "tokenizer_config", "tokenizer_use_fast", "tokenizer_legacy",
            "tokenizer_use_mistral_common", "tokenizer_type", "processor_type", "tokenizer_save_jinja_files", "trust_remote_code",
            "experimental_skip_move_to_device", "use_kernels", "model_quantization_config", "model_quantization_config_kwargs", "output_dir",
            "hub_model_id", "hub_strategy", "hub_revision", "save_safetensors", "model_type", "revision_of_model", "model_config",
            // peft.py
            "load_in_8bit", "load_in_4bit", "adapter", "lora_model_dir", "lora_r", "lora_alpha", "lora_fan_in_fan_out", "lora_target_modules",
            "lora_target_parameters", "lora_target_linear", "lora_modules_to_save", "lora_dropout", "peft_layers_to_transform",
            "peft_layers_pattern", "peft", "peft_use_dora", "peft_use_rslora", "peft_layer_replication", "peft_init_lora_weights",
            "peft_trainable_token_indices", "peft_ensure_weight_tying", "peft_autocast_adapter_dtype", "qlora_sharded_model_loading",
            "lora_on_cpu", "gptq", "bnb_config_kwargs", "loraplus_lr_ratio", "loraplus_lr_embedding", "merge_lora", "merge_method",
            "relora", "relora_prune_ratio", "relora_prune_method", "relora_cpu_offload",
            // integrations.py
            "use_mlflow", "mlflow_tracking_uri", "mlflow_experiment_name", "mlflow_run_name", "hf_mlflow_log_artifacts", "lisa_n_layers",
            "lisa_step_interval", "lisa_layers_attribute", "use_wandb", "wandb_name", "wandb_run_id", "wandb_mode", "wandb_project",
            "wandb_entity", "wandb_watch", "wandb_log_model", "use_comet", "comet_api_key", "comet_workspace", "comet_project_name",
            "comet_experiment_key", "comet_mode", "comet_online", "comet_experiment_config", "gradio_title", "gradio_share",
            "gradio_server_name", "gradio_server_port", "gradio_max_new_tokens", "gradio_temperature", "use_ray", "ray_run_name",
            "ray_num_workers", "resources_per_worker",
        ];
        var unknown = axolotl.Where(k => ConfigSchema.FindTrainKey(k) is null).ToList();
        Assert.Empty(unknown);
    }
}
