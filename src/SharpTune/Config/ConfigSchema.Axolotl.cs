namespace SharpTune.Config;

/// <summary>
/// The axolotl keys SharpTune does not read as settings, each with its class (part of the one key table, ConfigSchema):
/// Ignored keys do not change what is trained (logging backends, kernels, compile switches, launcher and hub settings):
/// accepted and named once in the "not used here" line. Refused keys would change what is trained or how and this build
/// cannot do it: validate and train stop with exit 2, naming each one and what to do. Every key of axolotl's config
/// schema (src/axolotl/utils/schemas: config, training, model, peft, integrations, quantization, multimodal, deprecated)
/// is either honoured in ConfigSchema, or listed here; anything else is an unknown key.
/// </summary>
public static partial class ConfigSchema
{
    private static List<ConfigKey> AxolotlKeys()
    {
        var keys = new List<ConfigKey>();
        void Ignored(string why, params string[] names)
        {
            foreach (var name in names)
                keys.Add(new ConfigKey { Name = name, Type = ConfigValueType.Ignored, Doc = why, Section = "Accepted, not used here" });
        }
        void Refused(string note, params string[] names) => RefusedUnless(note, [], names);
        void RefusedUnless(string note, string[] offValues, params string[] names)
        {
            foreach (var name in names)
                keys.Add(new ConfigKey
                {
                    Name = name, Type = ConfigValueType.Refused, Doc = note, Section = "Refused (changes training, not supported)", OffValues = offValues,
                });
        }

        // ---- accepted, not used here: the trained weights are the same with or without them ----
        Ignored("experiment trackers: metrics go to output_dir/metrics.jsonl and TensorBoard (use_tensorboard)",
            "use_wandb", "wandb_project", "wandb_entity", "wandb_watch", "wandb_name", "wandb_run_id", "wandb_log_model", "wandb_mode",
            "use_mlflow", "mlflow_tracking_uri", "mlflow_experiment_name", "mlflow_run_name", "hf_mlflow_log_artifacts",
            "use_comet", "comet_api_key", "comet_workspace", "comet_project_name", "comet_experiment_key", "comet_mode", "comet_online", "comet_experiment_config",
            "use_swanlab", "swanlab_project", "swanlab_workspace", "swanlab_experiment_name", "swanlab_description", "swanlab_mode", "swanlab_log_model",
            "swanlab_log_completions", "swanlab_completion_log_interval", "swanlab_completion_max_buffer", "swanlab_lark_webhook_url", "swanlab_lark_secret",
            "trackio_project_name", "trackio_run_name", "trackio_space_id",
            "use_otel_metrics", "otel_metrics_host", "otel_metrics_port", "include_tokens_per_second", "profiler_steps", "debug",
            "run_name", "runpod_job_id",
            "gradio_title", "gradio_share", "gradio_server_name", "gradio_server_port", "gradio_max_new_tokens", "gradio_temperature");
        Ignored("evaluation extras: evaluation reports loss and perplexity (and eval_exact_match_samples); training is unaffected",
            "eval_table_size", "eval_max_new_tokens", "do_causal_lm_eval", "eval_causal_lm_metrics", "do_bench_eval", "bench_dataset", "bench_split",
            "eval_strategy", "evaluation_strategy", "save_strategy", "save_only_model", "save_first_step");
        Ignored("attention, kernel and compile switches: attention runs libtorch's scaled_dot_product_attention, the same mathematics",
            "attn_implementation", "flex_attention", "flex_attn_compile_kwargs", "eager_attention", "flash_attn_cross_entropy", "flash_attn_rms_norm",
            "flash_attn_fuse_qkv", "flash_attn_fuse_mlp", "flash_optimum", "fused_attn_kernel", "gemma4_hybrid_attn_impl",
            "unsloth_cross_entropy_loss", "unsloth_lora_mlp", "unsloth_lora_qkv", "unsloth_lora_o", "unsloth_rms_norm", "unsloth_rope",
            "lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel",
            "liger_rope", "liger_rms_norm", "liger_rms_norm_gated", "liger_layer_norm", "liger_glu_activation", "liger_cross_entropy",
            "liger_fused_linear_cross_entropy", "cut_cross_entropy",
            "torch_compile", "torch_compile_backend", "torch_compile_mode", "use_kernels", "llama4_linearized_experts", "experts_implementation",
            "use_scattermoe", "use_sonicmoe", "use_glm_dsa_kernels", "tiled_mlp", "tiled_mlp_num_shards", "batch_flattening", "dpo_use_logits_to_keep");
        Ignored("memory and loading settings: they change where tensors live, not their values",
            "activation_offloading", "gradient_checkpointing_kwargs", "low_cpu_mem_usage", "experimental_skip_move_to_device", "device_map", "max_memory",
            "gpu_memory_limit", "torchdistx_path", "gc_steps", "dataloader_pin_memory", "dataloader_prefetch_factor", "dataloader_drop_last",
            "dataset_keep_in_memory", "remove_unused_columns", "skip_prepare_dataset", "preprocess_iterable", "is_preprocess", "lora_on_cpu",
            "merge_method", "qlora_sharded_model_loading", "peft_autocast_adapter_dtype", "embeddings_skip_upcast", "sample_packing_group_size",
            "sample_packing_bin_size", "sample_packing_eff_est", "sample_packing_seq_len_multiplier", "total_num_tokens", "total_supervised_tokens",
            "axolotl_config_path", "is_falcon_derived_model", "is_llama_derived_model", "is_mistral_derived_model", "is_qwen_derived_model",
            "cls_model_config", "processor_type", "tokenizer_use_fast", "tokenizer_legacy", "tokenizer_save_jinja_files", "vllm");
        Ignored("launcher and parallelism settings: rank, world size and local rank come from the launcher (sharptune launch, mpirun, srun); see docs/distributed.md",
            "ddp", "ddp_broadcast_buffers", "world_size", "local_rank",
            "accelerator_config", "fsdp_final_state_dict_type", "sequence_parallel_degree", "context_parallel_size", "heads_k_stride",
            "ring_attn_func", "tensor_parallel_size", "dp_shard_size", "dp_replicate_size", "expert_parallel_size", "expert_parallel_num_nvl_bytes",
            "expert_parallel_token_capacity");
        Ignored("hub and cloud settings: the token comes from HF_TOKEN (or input.credentials), pushes go to hub_model_id",
            "hf_use_auth_token", "push_dataset_to_hub", "project_name", "provider", "gpu", "gpu_count", "node_count", "memory", "memory_preprocess",
            "branch", "dockerfile_commands", "secrets", "timeout", "timeout_preprocess", "volumes");

        // ---- refused: each would train something else, or another way, than this build does ----
        Refused("LISA (training a few randomly switched layers at a time) is not implemented; remove the lisa_* keys to train all layers, or use unfrozen_parameters to choose layers",
            "lisa_n_layers", "lisa_step_interval", "lisa_layers_attribute");
        Refused("ReLoRA (periodic merge-and-restart of the adapter) is not implemented; remove relora and the relora_* / jagged_restart_* keys for plain LoRA",
            "relora", "relora_prune_ratio", "relora_prune_method", "relora_cpu_offload", "jagged_restart_steps", "jagged_restart_warmup_steps", "jagged_restart_anneal_steps");
        Refused("PEFT options beyond LoRA/DoRA/rsLoRA (LoftQ initialisation, torchao backends) are not implemented; remove peft (adapter: qlora quantizes with nf4)",
            "peft");
        Refused("quantization-aware training and post-training quantization are not implemented; remove it (export with sharptune export --quantize)",
            "qat", "quantization", "nvfp4_merge_aware", "llmcompressor", "use_onebitllms", "dsv4_fp4_grouped_mode", "use_dsv4_kernels");
        Refused("fp8 training is not implemented; remove it (bf16 is used where the device supports it)", "fp8", "fp8_enable_fsdp_float8_all_gather");
        Refused("non-AMP dtypes are not read from this key; write bf16: full (bf16 weights), fp16: true or bf16: false instead",
            "bfloat16", "float16", "float32", "torch_dtype");
        Refused("GPTQ-quantized base models are not supported; use a full-precision base_model with adapter: qlora",
            "gptq", "gptq_disable_exllama", "gptq_groupsize", "gptq_model_v1");
        Refused("custom bitsandbytes / model quantization settings are not supported; remove it (adapter: qlora uses bnb_4bit_* keys)",
            "bnb_config_kwargs", "model_quantization_config", "model_quantization_config_kwargs", "quantize_moe_experts");
        Refused("LoRA on raw parameters, layer subsets, layer replication or custom initialisation is not implemented; adapt modules with lora_target_modules / lora_target_linear",
            "lora_target_parameters", "peft_layers_to_transform", "peft_layers_pattern", "peft_layer_replication", "peft_init_lora_weights",
            "peft_trainable_token_indices", "peft_ensure_weight_tying");
        Refused("LoRA+ (a larger learning rate for lora_B) is not implemented; remove it to train both matrices at learning_rate",
            "loraplus_lr_ratio", "loraplus_lr_embedding");
        Refused("per-group learning rates and optimizer arguments are not implemented; remove it (every trainable parameter uses learning_rate)",
            "optim_args", "optim_target_modules", "embedding_lr", "embedding_lr_scale", "lr_groups", "lr_scheduler_kwargs", "lr_div_factor",
            "adam_epsilon2", "adam_beta3");
        Refused("quadratic warmup is not implemented; remove it for linear warmup", "lr_quadratic_warmup");
        RefusedUnless("a constant phase before the cosine decay is not implemented; remove it (cosine_min_lr_ratio sets the floor)", ["0", "0.0"],
            "cosine_constant_lr_ratio");
        Refused("batch_size is not derived here; set gradient_accumulation_steps = batch_size / micro_batch_size instead", "batch_size");
        Refused("changing the batch size during training is not implemented; remove it and choose micro_batch_size", "auto_find_batch_size");
        Refused("grouping rows of similar length into batches is not implemented (batches follow the seeded shuffle); remove it or set it to false",
            "group_by_length");
        Refused("rows are packed in shuffled order; sequential packing and unshuffled curriculum order are not implemented — remove it",
            "sample_packing_sequentially", "curriculum_sampling", "multipack_real_batches");
        Refused("dataset shards are not selected here; remove it to train on the whole dataset (or point path/split at the part you want)",
            "dataset_shard_num", "dataset_shard_idx");
        Refused("rows are dropped only when longer than sequence_len; a minimum length and an RL prompt limit are not implemented — remove it",
            "min_sample_len", "max_prompt_len");
        RefusedUnless("pretraining streams keep attention within each packed document; remove it or set it to true", ["true", "yes", "on"],
            "pretrain_multipack_attn");
        Refused("pretraining stream buffers and concatenation settings are not read here; remove it",
            "pretraining_sample_concatenation", "pretrain_multipack_buffer_size", "streaming_multipack_buffer_size", "streaming");
        Refused("PoSE context extension and shifted sparse attention are not implemented; remove it",
            "use_pose", "pose_split_on_token_ids", "pose_max_context_len", "pose_num_chunks", "s2_attention");
        Refused("resizing or re-initialising embeddings is not implemented (only tokens grows the vocabulary); remove it",
            "resize_token_embeddings_to_32x", "mean_resizing_embeddings", "shrink_embeddings", "fix_untrained_tokens", "added_tokens_overrides", "reinit_weights");
        Refused("the tokenizer is read from tokenizer.json; the mistral-common tokenizer is not supported — remove it", "tokenizer_use_mistral_common");
        Refused("keeping the best checkpoint as the final model is not implemented (the final model is the last step's; the best checkpoint is kept on disk); remove it",
            "load_best_model_at_end", "metric_for_best_model", "greater_is_better");
        Refused("reward models and classification heads are not supported (SharpTune trains causal language models); remove it",
            "reward_model", "process_reward_model", "num_labels", "center_rewards_coefficient");
        Refused("this preference objective is not implemented (rl: dpo, ipo via dpo_loss_type, orpo, simpo, kto, grpo are); remove it",
            "rpo_alpha", "cpo_alpha", "dpo_use_weighting");
        Refused("diffusion language-model training is not implemented; remove it", "diffusion");
        Refused("entropy-adaptive fine-tuning and EBFT are not implemented; remove it", "use_eaft", "eaft_alpha", "eaft_k", "ebft");
        Refused("multimodal training is not implemented (only text is trained); remove it", "freeze_mm_modules");
        Refused("Ray launches several data-parallel workers (a larger global batch); it is not supported — remove it and set gradient_accumulation_steps for the batch you want",
            "use_ray", "ray_run_name", "ray_num_workers", "resources_per_worker");
        Refused("pushing to a hub branch other than main is not supported; remove it", "hub_revision");
        Refused("overriding config.json values is not supported (only model_config.output_router_logits is read); edit the model's config.json", "model_config");
        Refused("a default system message is not inserted here; put the system turn in the data or the chat template", "default_system_message");
        return keys;
    }
}
