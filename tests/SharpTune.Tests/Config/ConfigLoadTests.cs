using SharpTune.Config;
using static SharpTune.Tests.ConfigTests.ConfigTestKit;

namespace SharpTune.Tests.ConfigTests;

public sealed class ConfigLoadTests
{
    private static string Examples => Path.Combine(TestPaths.RepoRoot, "examples");

    [Fact]
    public void FullAxolotlExampleLoadsEveryValue()
    {
        var warnings = new List<string>();
        string path = Path.Combine(Examples, "axolotl-full.yaml");
        var c = ConfigLoader.Load(path, [], warnings.Add);

        Assert.Equal("NousResearch/Llama-3.2-1B", c.BaseModel); // no such folder next to the file: a hub id, kept as written
        Assert.Equal("AutoModelForCausalLM", c.ModelType);
        Assert.Equal(3, c.Datasets.Count);
        Assert.Equal("data/alpaca-tiny.jsonl", c.Datasets[0].Path);
        Assert.Equal("alpaca", c.Datasets[0].Type);
        Assert.Equal(DatasetFileType.Json, c.Datasets[0].DsType);
        var chat = c.Datasets[1];
        Assert.Equal("chat_template", chat.Type);
        Assert.Equal("train[:2000]", chat.Split);
        Assert.Equal("conversations", chat.FieldMessages);
        Assert.Equal("from", chat.MessagePropertyMappings["role"]);
        Assert.Equal("value", chat.MessagePropertyMappings["content"]);
        Assert.Equal(["gpt", "assistant"], chat.Roles["assistant"]);
        Assert.Equal(["assistant"], chat.RolesToTrain);
        Assert.Equal(TrainOnEos.Turn, chat.TrainOnEos);
        Assert.Equal(0.5, chat.Weight);
        Assert.Equal(["a.txt", "b.txt"], c.Datasets[2].DataFiles);
        Assert.Equal(DatasetFileType.Text, c.Datasets[2].DsType);
        Assert.Equal("test", c.TestDatasets[0].Split);
        Assert.Equal(Path.Combine(Examples, "prepared", "full"), c.DatasetPreparedPath);
        Assert.Equal(1024, c.SequenceLen);
        Assert.Equal(ExcessLengthStrategy.Truncate, c.ExcessLengthStrategy);
        Assert.True(c.SamplePacking);
        Assert.False(c.EvalSamplePacking);
        Assert.Equal("<|finetune_right_pad_id|>", c.SpecialTokens["pad_token"]);
        Assert.Equal(["<|tool|>"], c.Tokens);
        Assert.Equal(AdapterType.Qlora, c.Adapter);
        Assert.True(c.LoadIn4bit);
        Assert.Equal(QuantType4Bit.Nf4, c.Bnb4bitQuantType);
        Assert.Equal(ComputeDtype.Bfloat16, c.Bnb4bitComputeDtype);
        Assert.Equal(32, c.LoraR);
        Assert.Equal(64, c.LoraAlpha);
        Assert.Equal(0.05, c.LoraDropout);
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"], c.LoraTargetModules);
        Assert.Equal(["embed_tokens", "lm_head"], c.LoraModulesToSave);
        Assert.True(c.PeftUseRslora);
        Assert.True(c.MergeLora);
        Assert.Equal(4, c.MicroBatchSize);
        Assert.Equal(8, c.EvalBatchSize);
        Assert.Equal(8, c.GradientAccumulationSteps);
        Assert.Equal(3.0, c.NumEpochs);
        Assert.Equal(500, c.MaxSteps);
        Assert.Equal(2e-4, c.LearningRate);
        Assert.Equal(LrSchedulerType.CosineWithMinLr, c.LrScheduler);
        Assert.Equal(0.1, c.CosineMinLrRatio);
        Assert.Equal(0.03, c.WarmupRatio);
        Assert.Null(c.WarmupSteps);
        Assert.Equal(OptimizerType.Adamw8bit, c.Optimizer); // paged_adamw_8bit: 8-bit AdamW (paging only moves memory)
        Assert.Equal(0.01, c.WeightDecay);
        Assert.Equal(0.95, c.AdamBeta2);
        Assert.Equal(1e-8, c.AdamEpsilon);
        Assert.Equal(5.0, c.NeftuneNoiseAlpha);
        Assert.Equal(1234, c.Seed);
        Assert.Equal(Bf16Mode.True, c.Bf16);
        Assert.True(c.Tf32);
        Assert.Equal(GradientCheckpointingMode.True, c.GradientCheckpointing);
        Assert.Equal(50, c.EvalSteps);
        Assert.Equal(100, c.SaveSteps);
        Assert.Equal(3, c.SaveTotalLimit);
        Assert.True(c.AutoResumeFromCheckpoints);
        Assert.Equal(3, c.EarlyStoppingPatience);
        Assert.Equal(5.0, c.LossWatchdogThreshold);
        Assert.Equal(10, c.LoggingSteps);
        Assert.Equal(Path.Combine(Examples, "outputs", "full"), c.OutputDir);
        Assert.Equal("my-org/llama-3.2-1b-qlora", c.HubModelId);

        // wandb_entity is empty: it asks for nothing and is not mentioned.
        Assert.Equal([$"{path}: not used here: wandb_project"], warnings);
    }

    [Fact]
    public void DefaultsApplyWhenKeysAreAbsentOrNull()
    {
        var c = ConfigLoader.Load(Write(Minimal + "lora_dropout:\nmax_steps: ~\n"), [], _ => { });
        Assert.Equal(512, c.SequenceLen);
        Assert.Equal(1, c.MicroBatchSize);
        Assert.Equal(5e-5, c.LearningRate);
        Assert.Equal(LrSchedulerType.Cosine, c.LrScheduler);
        Assert.Equal(OptimizerType.AdamwTorch, c.Optimizer);
        Assert.Equal(Bf16Mode.Auto, c.Bf16);
        Assert.Equal(0.0, c.LoraDropout);
        Assert.Null(c.MaxSteps);
        Assert.Null(c.Adapter);
        Assert.Equal("train", c.Datasets[0].Split);
    }

    [Fact]
    public void LearningRateAcceptsStringAndYamlFloatForms()
    {
        var a = ConfigLoader.Load(Write(Minimal + "learning_rate: \"2e-4\"\n"), [], _ => { });
        var b = ConfigLoader.Load(Write(Minimal + "learning_rate: 0.0002\n"), [], _ => { });
        Assert.Equal(0.0002, a.LearningRate);
        Assert.Equal(0.0002, b.LearningRate);
    }

    [Fact]
    public void RelativePathsResolveAgainstTheConfigFolder()
    {
        string dir = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "models", "m"));
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        File.WriteAllText(Path.Combine(dir, "data", "rows.jsonl"), "{}\n");
        string path = Path.Combine(dir, "run.yaml");
        File.WriteAllText(path, """
            base_model: models/m
            datasets:
              - path: data/rows.jsonl
                type: completion
              - path: tatsu-lab/alpaca
                type: alpaca
            output_dir: out
            """);
        var c = ConfigLoader.Load(path, [], _ => { });
        Assert.Equal(Path.Combine(dir, "models", "m"), c.BaseModel);
        Assert.Equal(Path.Combine(dir, "data", "rows.jsonl"), c.Datasets[0].Path);
        Assert.Equal("tatsu-lab/alpaca", c.Datasets[1].Path); // not a local path: a hub dataset id
        Assert.Equal(Path.Combine(dir, "out"), c.OutputDir);
    }

    [Fact]
    public void UnknownKeyIsAnErrorNamingEachWithTheNearestKnownKey()
    {
        string path = Write(Minimal + "adapter: lora\nlora_r: 8\nlora_alpah: 16\nlearning_rat: 1e-4\ncompletely_unrelated_thing: 1\n");
        var e = Assert.Throws<ConfigProblemsException>(() => ConfigLoader.Load(path, [], _ => { }));
        Assert.Equal(
        [
            $"{path}: unknown key 'lora_alpah' (did you mean 'lora_alpha'?); remove it, or set strict: false to accept unknown keys",
            $"{path}: unknown key 'learning_rat' (did you mean 'learning_rate'?); remove it, or set strict: false to accept unknown keys",
            $"{path}: unknown key 'completely_unrelated_thing'; remove it, or set strict: false to accept unknown keys",
        ], e.Problems);
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.StartsWith($"error: {path}: unknown key 'lora_alpah' (did you mean 'lora_alpha'?)", err);
    }

    [Fact]
    public void UnknownKeyWarnsWithNearestKnownKeyUnderStrictFalse()
    {
        string path = Write(Minimal + "strict: false\nadapter: lora\nlora_r: 8\nlora_alpah: 16\nlearning_rat: 1e-4\ncompletely_unrelated_thing: 1\n");
        var warnings = new List<string>();
        var c = ConfigLoader.Load(path, [], warnings.Add);
        Assert.Equal(
        [
            $"{path}: unknown key 'lora_alpah' (did you mean 'lora_alpha'?)",
            $"{path}: unknown key 'learning_rat' (did you mean 'learning_rate'?)",
            $"{path}: unknown key 'completely_unrelated_thing'",
        ], warnings);
        Assert.Equal(8, c.LoraAlpha); // the misspelled key did not apply; lora_alpha defaults to lora_r

        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(0, exit);
        Assert.Contains($"warning: {path}: unknown key 'lora_alpah' (did you mean 'lora_alpha'?)", err);
    }

    [Fact]
    public void UnknownDatasetKeyWarnsWithItsIndex()
    {
        string path = Write("base_model: org/model\nstrict: false\ndatasets:\n  - path: d.jsonl\n    type: alpaca\n    feild_instruction: q\n");
        var warnings = new List<string>();
        ConfigLoader.Load(path, [], warnings.Add);
        Assert.Equal([$"{path}: unknown key 'datasets.0.feild_instruction' (did you mean 'datasets.0.field_instruction'?)"], warnings);
    }

    [Fact]
    public void SetOverridesAreTypedByTheKey()
    {
        string path = Write(Minimal + "adapter: lora\nlora_r: 8\nlora_target_modules: [q_proj]\n");
        var c = ConfigLoader.Load(path,
        [
            "lora_r=32",                          // int
            "learning_rate=3e-5",                 // float
            "sample_packing=true",                // bool
            "chat_template=chatml",               // string
            "lr_scheduler=linear",                // choice
            "lora_target_modules.1=v_proj",       // list element (append)
            "datasets.0.path=other.jsonl",        // nested element
            "datasets.1.path=more.jsonl",         // appended dataset
            "datasets.1.type=completion",
            "special_tokens.pad_token=<pad>",     // map entry
            "tokens=<a>,<b>",                     // list from comma-separated text
            "save_merged=true",                   // alias of merge_lora
        ], _ => { });
        Assert.Equal(32, c.LoraR);
        Assert.Equal(3e-5, c.LearningRate);
        Assert.True(c.SamplePacking);
        Assert.Equal("chatml", c.ChatTemplate);
        Assert.Equal(LrSchedulerType.Linear, c.LrScheduler);
        Assert.Equal(["q_proj", "v_proj"], c.LoraTargetModules);
        Assert.Equal("other.jsonl", c.Datasets[0].Path);
        Assert.Equal("alpaca", c.Datasets[0].Type);
        Assert.Equal("more.jsonl", c.Datasets[1].Path);
        Assert.Equal("completion", c.Datasets[1].Type);
        Assert.Equal("<pad>", c.SpecialTokens["pad_token"]);
        Assert.Equal(["<a>", "<b>"], c.Tokens);
        Assert.True(c.MergeLora);
    }

    [Fact]
    public void SetWithUnknownKeyIsAnErrorWithSuggestion()
    {
        string path = Write(Minimal);
        var (exit, _, err) = RunCli("validate", path, "--set", "lora_alpah=16");
        Assert.Equal(2, exit);
        Assert.Equal("error: --set lora_alpah=16: unknown key 'lora_alpah' (did you mean 'lora_alpha'?)\n", err);

        (exit, _, err) = RunCli("validate", path, "--set", "datasets.0.feild=text");
        Assert.Equal(2, exit);
        Assert.Equal("error: --set datasets.0.feild=text: unknown key 'datasets.0.feild' (did you mean 'datasets.0.field'?)\n", err);
    }

    [Fact]
    public void SetWithBadValueNamesTheOverride()
    {
        string path = Write(Minimal);
        var (exit, _, err) = RunCli("validate", path, "--set", "micro_batch_size=two");
        Assert.Equal(2, exit);
        Assert.Equal($"error: {path}: micro_batch_size: two is invalid; expected an integer ≥ 1 (from --set micro_batch_size=two)\n", err);
    }

    [Fact]
    public void JsonJobRequestGivesTheSameRecordAsYaml()
    {
        string dir = TestPaths.TempDir();
        string yaml = Path.Combine(dir, "c.yaml");
        File.WriteAllText(yaml, """
            base_model: org/model
            datasets:
              - path: data.jsonl
                type: chat_template
                roles_to_train: [assistant]
                message_property_mappings: {role: from, content: value}
            adapter: lora
            lora_r: 16
            lora_target_modules: [q_proj, v_proj]
            learning_rate: 2e-4
            bf16: false
            max_steps: 20
            """);
        string json = Path.Combine(dir, "job.json");
        File.WriteAllText(json, """
            {"input": {"args": {
              "base_model": "org/model",
              "datasets": [{"path": "data.jsonl", "type": "chat_template", "roles_to_train": ["assistant"],
                            "message_property_mappings": {"role": "from", "content": "value"}}],
              "adapter": "lora", "lora_r": 16, "lora_target_modules": ["q_proj", "v_proj"],
              "learning_rate": "2e-4", "bf16": false, "max_steps": 20
            }}}
            """);
        var a = ConfigLoader.Load(yaml, [], _ => { });
        var b = ConfigLoader.Load(json, [], _ => { });
        Assert.Equal(ConfigWriter.ToYaml(a), ConfigWriter.ToYaml(b));
        Assert.Equal(16, b.LoraR);
        Assert.Equal(Bf16Mode.False, b.Bf16);
        Assert.Equal("from", b.Datasets[0].MessagePropertyMappings["role"]);

        // Plain JSON (no job wrapper) and a job request with no extension are read too.
        string plain = Path.Combine(dir, "plain.json");
        File.WriteAllText(plain, """{"base_model": "org/model", "datasets": [{"path": "d", "type": "alpaca"}], "lora_dropout": 0.1}""");
        Assert.Equal(0.1, ConfigLoader.Load(plain, [], _ => { }).LoraDropout);
        string noExt = Path.Combine(dir, "request");
        File.WriteAllText(noExt, File.ReadAllText(json));
        Assert.Equal(ConfigWriter.ToYaml(b), ConfigWriter.ToYaml(ConfigLoader.Load(noExt, [], _ => { })));
    }

    [Fact]
    public void WrittenYamlLoadsBackToTheSameRecord()
    {
        var warnings = new List<string>();
        var a = ConfigLoader.Load(Path.Combine(Examples, "axolotl-full.yaml"), [], _ => { });
        string yaml = ConfigWriter.ToYaml(a);
        var b = ConfigLoader.Load(Write(yaml), [], warnings.Add);
        Assert.Equal(yaml, ConfigWriter.ToYaml(b));
        Assert.Empty(warnings);
        Assert.Contains("learning_rate: 0.0002\n", yaml);
        Assert.Contains("optimizer: adamw_8bit\n", yaml);
    }

    [Fact]
    public void QuickstartValidates()
    {
        string path = Path.Combine(Examples, "quickstart.yaml");
        var (exit, stdout, err) = RunCli("validate", path);
        Assert.Equal("", err);
        Assert.Equal(0, exit);
        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"model       {Path.Combine(Examples, "models", "tiny-chat")} (local folder, llama)", lines[0]);
        Assert.Equal("adapter     none (full fine-tuning)", lines[3]);
        Assert.Equal("config OK", lines[^1]);
    }


    [Fact]
    public void ValidatePrintsASummary()
    {
        string dir = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "m"));
        File.WriteAllText(Path.Combine(dir, "m", "config.json"), // A small model of the family, so that the memory forecast validate prints fits and warns of nothing.
            "{\"model_type\": \"qwen3_moe\", \"hidden_size\": 64, \"intermediate_size\": 128, \"moe_intermediate_size\": 32, \"num_hidden_layers\": 2, " +
            "\"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": 16, \"num_experts\": 4, \"num_experts_per_tok\": 2, \"vocab_size\": 1000}");
        string path = Path.Combine(dir, "c.yaml");
        File.WriteAllText(path, "base_model: ./m\ndatasets:\n  - {path: hf/ds, type: sharegpt}\nadapter: lora\nlora_r: 4\n" +
                                "lora_target_modules: [q_proj, v_proj]\nmax_steps: 10\nwarmup_steps: 2\n");
        var (exit, stdout, err) = RunCli("validate", path);
        // The only stderr line validate may print here is the memory forecast's (a large model planned on this machine).
        Assert.All(err.Split('\n', StringSplitOptions.RemoveEmptyEntries), line => Assert.StartsWith("warning: predicted peak", line));
        Assert.Equal(0, exit);
        Assert.Equal(
            $"""
            model       {Path.Combine(dir, "m")} (local folder, qwen3_moe)
            dataset 0   hf/ds (type sharegpt)
            adapter     lora r=4 alpha=4 dropout=0 targets=q_proj,v_proj
            batch       micro_batch_size=1 gradient_accumulation_steps=1 sequence_len=512
            steps       max_steps=10 learning_rate=5e-05 lr_scheduler=cosine warmup_steps=2 optimizer=adamw_torch
            output_dir  {Path.Combine(dir, "outputs")}
            memory plan for cpu
            """, stdout[..stdout.IndexOf(" (", stdout.IndexOf("memory plan for cpu", StringComparison.Ordinal), StringComparison.Ordinal)]);
        Assert.Contains(": fits\n", stdout);
        Assert.EndsWith("config OK\n", stdout);
    }

    [Theory]
    [InlineData("{\"model_type\": \"gpt2\"}", "model_type 'gpt2' is not supported; supported: llama, mistral, qwen2, gemma, gemma2, phi3, qwen3, gemma3_text, mixtral, qwen3_moe")]
    [InlineData("{\"model_type\": \"gemma3\"}", "model_type 'gemma3' is the multimodal Gemma 3 (Gemma3ForConditionalGeneration, text model under text_config, weights under language_model.*), which is not supported; use a text-only gemma3_text checkpoint (Gemma3ForCausalLM, e.g. gemma-3-1b)")]
    [InlineData("{\"model_type\": \"mixtral\", \"num_local_experts\": 4, \"num_experts_per_tok\": 6}", "num_experts_per_tok must be between 1 and the number of experts (4), found 6")]
    public void ValidateRefusesTheLocalBaseModelsConfig(string configJson, string expected)
    {
        // validate reads a local base model's config.json as train does, and refuses what train would refuse.
        string dir = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "m"));
        string modelConfig = Path.Combine(dir, "m", "config.json");
        File.WriteAllText(modelConfig, configJson);
        string path = Path.Combine(dir, "c.yaml");
        File.WriteAllText(path, "base_model: ./m\ndatasets:\n  - {path: hf/ds, type: sharegpt}\n");
        var (exit, stdout, err) = RunCli("validate", path);
        Assert.Equal($"error: {path}: base_model: {modelConfig}: {expected}\n", err);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
    }

    [Fact]
    public void SuggestionDistanceCountsTranspositionsAsOneEdit()
    {
        Assert.Equal(1, KeySuggester.Distance("lora_alpah", "lora_alpha"));
        Assert.Equal(1, KeySuggester.Distance("lr_shceduler", "lr_scheduler"));
        Assert.Equal("lora_alpha", KeySuggester.Nearest("Lora_Alpha", ["lora_r", "lora_alpha"]));
        Assert.Equal("num_epochs", KeySuggester.Nearest("epochs", ConfigSchema.TrainKeys.Select(k => k.Name)));
        Assert.Null(KeySuggester.Nearest("xyz", ConfigSchema.TrainKeys.Select(k => k.Name)));
    }
}
