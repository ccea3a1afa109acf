using System.Reflection;
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

    [Theory]
    [InlineData(typeof(TrainConfig))]
    [InlineData(typeof(DatasetConfig))]
    [InlineData(typeof(TrlConfig))]
    public void EveryPropertyIsDeclaredOnceAsAKeyOrNot(Type record)
    {
        var properties = record.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).ToList();
        var undeclared = properties.Where(p => p.IsDefined(typeof(KeyAttribute), false) == p.IsDefined(typeof(NotAConfigKeyAttribute), false))
            .Select(p => p.Name).ToArray();
        Assert.Equal(Array.Empty<string>(), undeclared); // neither [Key] nor [NotAConfigKey], or both
        var table = record == typeof(TrainConfig) ? ConfigSchema.TrainKeys : record == typeof(DatasetConfig) ? ConfigSchema.DatasetKeys : ConfigSchema.TrlKeys;
        var keyed = properties.Where(p => p.IsDefined(typeof(KeyAttribute), false)).ToList();
        // Each declared property is exactly one row of its table, named by its snake_case form, in declaration order.
        Assert.Equal(keyed.OrderBy(p => p.MetadataToken).Select(p => p.Name).ToArray(), table.Where(k => k.Property != null).Select(k => k.Property!.Name).ToArray());
        Assert.All(table.Where(k => k.Property != null), k => Assert.Equal(k.Property!.Name, string.Concat(k.Name.Split('_').Select(w => char.ToUpperInvariant(w[0]) + w[1..]))));
    }

    [Fact]
    public void KeysTakeTypeDefaultAndValuesFromTheirProperty()
    {
        var r = ConfigSchema.FindTrainKey("lora_r")!;
        Assert.Equal((ConfigValueType.Integer, true, "an integer ≥ 1"), (r.Type, r.Nullable, r.Expected));
        var optimizer = ConfigSchema.FindTrainKey("optimizer")!;
        Assert.Equal(Enum.GetNames<OptimizerType>().Length, optimizer.Choices.Count);
        Assert.Equal("adamw_8bit", optimizer.ValueAliases["paged_adamw_8bit"]); // from the enum member's [Alias]
        Assert.Equal("group", ConfigSchema.TrlKeys.Single(k => k.Name == "scale_rewards").ValueAliases["true"]);
        Assert.Equal("trl entries", ConfigSchema.TrlKeys[0].Section);
        Assert.Equal(PathResolution.IfExists, ConfigSchema.FindDatasetKey("chat_template_jinja")!.Paths);
        Assert.Contains("| `sequence_len` | int | 512 | ≥ 1 |", ConfigDocs.Generate());
        Assert.DoesNotContain("{=", ConfigDocs.Generate()); // every doc list written out
        Assert.Contains("Supervised: alpaca, alpaca_chat, sharegpt,", ConfigSchema.FindDatasetKey("type")!.Doc);
    }

    [Fact]
    public void RefusedEnumValuesAreRefusedInCodeBuiltConfigsToo()
    {
        var config = new TrainConfig { BaseModel = "org/model", Datasets = [new DatasetConfig { Path = "d.jsonl", Type = "alpaca" }], Optimizer = OptimizerType.AdamwTorch4bit };
        var e = Assert.Throws<ConfigProblemsException>(() => ConfigValidator.Validate(config, "code", _ => { }));
        Assert.Equal(["code: optimizer: adamw_torch_4bit cannot be honoured: 4-bit optimizer state is not implemented; use adamw_8bit (8-bit state, 2 bytes per parameter) or adamw_torch"], e.Problems);
    }

    [Theory]
    [InlineData("≥ 1", 1, 0.5, "≥ 1")]
    [InlineData("> 0", 1e-9, 0, "> 0")]
    [InlineData("[0, 1)", 0, 1, "in [0, 1)")]
    [InlineData("(0, 1]", 1, 0, "in (0, 1]")]
    [InlineData("≥ -1", -1, -2, "≥ -1")]
    [InlineData("[0, 100000]", 100000, 100000.5, "in [0, 100000]")]
    public void DeclaredRangesReadAsWritten(string spec, double inside, double outside, string described)
    {
        var range = NumberRange.Parse(spec);
        Assert.True(range.Contains(inside));
        Assert.False(range.Contains(outside));
        Assert.Equal(described, range.Describe());
    }

    [Fact]
    public void AMalformedRangeIsAProgrammingError() =>
        Assert.Equal("'1..2' is not a range; expected ≥ N, > N, ≤ N, < N or an interval like [0, 1)",
            Assert.Throws<FormatException>(() => NumberRange.Parse("1..2")).Message);
}
