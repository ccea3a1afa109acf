using SharpTune.Config;

namespace SharpTune.Tests.ConfigTests;

public sealed class ConfigSchemaTests
{
    [Fact]
    public void EveryRecordPropertyHasExactlyOneKey()
    {
        var props = typeof(TrainConfig).GetProperties().Where(p => p.CanWrite && !p.IsDefined(typeof(NotAConfigKeyAttribute), false)).Select(p => p.Name).Order().ToArray();
        // The one property that is not a key: a job request's hub token, which must never be written back to config.yaml.
        Assert.Equal(["HubToken"], typeof(TrainConfig).GetProperties().Where(p => p.IsDefined(typeof(NotAConfigKeyAttribute), false)).Select(p => p.Name).ToArray());
        Assert.DoesNotContain("hf_secret", ConfigWriter.ToYaml(new TrainConfig { HubToken = "hf_secret" }));
        var keyed = ConfigSchema.TrainKeys.Where(k => k.Property != null).Select(k => k.Property!.Name).Order().ToArray();
        Assert.Equal(props, keyed);
        Assert.Equal("LoadIn4bit", ConfigSchema.FindTrainKey("load_in_4bit")!.Property!.Name);
        Assert.Equal("Bnb4bitQuantType", ConfigSchema.FindTrainKey("bnb_4bit_quant_type")!.Property!.Name);
        Assert.Equal("MergeLora", ConfigSchema.FindTrainKey("save_merged")!.Property!.Name);
        Assert.Equal(typeof(DatasetConfig).GetProperties().Length, ConfigSchema.DatasetKeys.Count);
        Assert.Equal(ConfigSchema.TrainKeys.Count, ConfigSchema.TrainKeys.Select(k => k.Name).Distinct().Count());
    }

    [Fact]
    public void IssueKeysAreAllKnown()
    {
        string[] issueKeys =
        [
            "base_model", "base_model_config", "tokenizer_config", "model_type", "tokenizer_type", "datasets", "test_datasets",
            "val_set_size", "dataset_prepared_path", "sequence_len", "sample_packing", "pad_to_sequence_len", "train_on_inputs",
            "adapter", "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "lora_target_linear", "lora_modules_to_save",
            "peft_use_dora", "peft_use_rslora", "load_in_4bit", "load_in_8bit", "bnb_4bit_quant_type", "bnb_4bit_use_double_quant",
            "micro_batch_size", "gradient_accumulation_steps", "num_epochs", "max_steps", "learning_rate", "lr_scheduler",
            "cosine_min_lr_ratio", "warmup_steps", "warmup_ratio", "optimizer", "weight_decay", "adam_beta1", "adam_beta2",
            "adam_epsilon", "max_grad_norm", "bf16", "fp16", "tf32", "gradient_checkpointing", "neftune_noise_alpha",
            "chat_template", "chat_template_jinja", "special_tokens", "tokens", "eval_steps", "evals_per_epoch", "save_steps",
            "saves_per_epoch", "save_total_limit", "save_safetensors", "resume_from_checkpoint", "auto_resume_from_checkpoints",
            "early_stopping_patience", "loss_watchdog_threshold", "loss_watchdog_patience", "logging_steps", "output_dir", "seed",
            "rl", "rl_beta", "merge_lora", "hub_model_id",
        ];
        Assert.Equal(Array.Empty<string>(), issueKeys.Where(k => ConfigSchema.FindTrainKey(k) == null).ToArray());
        string[] datasetKeys = ["path", "type", "ds_type", "data_files", "split", "name", "field", "field_messages", "field_instruction",
            "field_input", "field_output", "field_system", "message_property_mappings", "roles_to_train", "train_on_eos", "chat_template", "roles", "weight", "shards"];
        Assert.Equal(Array.Empty<string>(), datasetKeys.Where(k => ConfigSchema.FindDatasetKey(k) == null).ToArray());
    }

    [Fact]
    public void DocsMatchTheKeyTable()
    {
        string path = Path.Combine(TestPaths.RepoRoot, "docs", "config.md");
        string generated = ConfigDocs.Generate();
        if (Environment.GetEnvironmentVariable("SHARPTUNE_REGEN_DOCS") == "1")
        {
            string temp = path + ".tmp";
            File.WriteAllText(temp, generated);
            File.Move(temp, path, overwrite: true);
        }
        Assert.Equal(generated, File.ReadAllText(path));
        Assert.Contains("| `lora_r` | int | null | ≥ 1 | LoRA rank. Required when adapter is set. |", generated);
        Assert.Contains("| `learning_rate` | float | 5e-05 | > 0 |", generated);
        foreach (var key in ConfigSchema.TrainKeys.Concat(ConfigSchema.DatasetKeys))
            Assert.Contains(key.Type is ConfigValueType.Ignored or ConfigValueType.Refused && key.Section != "Evaluation, checkpoints and logging"
                ? $"`{key.Name}`" : $"| `{key.Name}`", generated);
    }
}
