using static SharpTune.Tests.ConfigTests.ConfigTestKit;

namespace SharpTune.Tests.ConfigTests;

/// <summary>Each bad config stops `sharptune validate` with exit code 2 and one line naming file, key, value and what is allowed.</summary>
public sealed class BadConfigTests
{
    private const string Data = "datasets:\n  - path: data.jsonl\n    type: alpaca\n";
    private const string Model = "base_model: org/model\n";

    public static TheoryData<string, string> Cases => new()
    {
        { Minimal + "adapter: lora\nlora_r: -1\n", "lora_r: -1 is invalid; expected an integer ≥ 1" },
        { Minimal + "learning_rate: -0.001\n", "learning_rate: -0.001 is invalid; expected a number > 0" },
        { Minimal + "learning_rate: 0\n", "learning_rate: 0 is invalid; expected a number > 0" },
        { Minimal + "learning_rate: fast\n", "learning_rate: fast is invalid; expected a number > 0" },
        { Minimal + "micro_batch_size: 2.5\n", "micro_batch_size: 2.5 is invalid; expected an integer ≥ 1" },
        { Minimal + "micro_batch_size: 0\n", "micro_batch_size: 0 is invalid; expected an integer ≥ 1" },
        { Minimal + "sample_packing: maybe\n", "sample_packing: maybe is invalid; expected true or false" },
        { Minimal + "sequence_len: 0\n", "sequence_len: 0 is invalid; expected an integer ≥ 1" },
        { Minimal + "sequence_len: [1, 2]\n", "sequence_len: a list is invalid; expected an integer ≥ 1" },
        { Minimal + "lr_scheduler: cosine_annealing\n",
            "lr_scheduler: cosine_annealing is invalid; expected one of cosine, linear, constant, constant_with_warmup, cosine_with_min_lr" },
        { Minimal + "optimizer: adamx\n",
            "optimizer: adamx is invalid; expected one of adamw_torch, adamw_torch_fused, adamw_hf, adamw, sgd, adafactor, lion, adamw_8bit, adamw_torch_4bit, muon" },
        { Minimal + "adapter: prefix\n", "adapter: prefix is invalid; expected one of lora, qlora or null" },
        { Minimal + "adapter: lora\n", "adapter: lora needs lora_r; expected lora_r: an integer ≥ 1 (e.g. 8, 16)" },
        { Minimal + "adapter: lora\nlora_r: 8\nlora_dropout: 1.0\n", "lora_dropout: 1.0 is invalid; expected a number in [0, 1)" },
        { Minimal + "warmup_ratio: 1.5\n", "warmup_ratio: 1.5 is invalid; expected a number in [0, 1)" },
        { Minimal + "warmup_ratio: 0.1\nwarmup_steps: 10\n", "warmup_steps: 10 and warmup_ratio: 0.1 are both set; expected one of them" },
        { Minimal + "bf16: true\nfp16: true\n", "bf16: true and fp16: true are both set; expected at most one of them" },
        { Minimal + "num_epochs: 0\nmax_steps: 0\n", "num_epochs: 0 with max_steps: 0 trains nothing; expected num_epochs > 0 or max_steps ≥ 1" },
        { Minimal + "adapter: lora\nlora_r: 8\nload_in_4bit: true\n", "load_in_4bit: true needs adapter: qlora (found adapter: lora)" },
        { Minimal + "load_in_4bit: true\n", "load_in_4bit: true needs adapter: qlora (found adapter: null)" },
        { Minimal + "adapter: qlora\nlora_r: 8\nload_in_4bit: false\n", "adapter: qlora with load_in_4bit: false; expected load_in_4bit: true (or adapter: lora)" },
        { Minimal + "chat_template: vicuna\n",
            "chat_template: 'vicuna' is not a chat template name; expected one of " + SharpTune.Tokenization.BuiltInChatTemplates.AllowedText },
        { Minimal + "chat_template: jinja\n", "chat_template: jinja needs chat_template_jinja: (template text or a .jinja file)" },
        { Model + "datasets:\n  - path: d.jsonl\n    type: chat_template\n    chat_template: tokenizer_default_fallback_llama\n",
            "datasets.0.chat_template: 'tokenizer_default_fallback_llama' falls back to 'llama', which is not a chat template name; expected tokenizer_default_fallback_NAME with NAME one of " +
            string.Join(", ", SharpTune.Tokenization.BuiltInChatTemplates.Names) },
        { Model + "datasets:\n  - path: d.jsonl\n    type: chat_template\n    chat_template: jinja\nchat_template_jinja: \"{{ x }}\"\n",
            "datasets.0.chat_template: jinja needs datasets.0.chat_template_jinja: (template text or a .jinja file)" },
        { Minimal + "rl: ppo\n", "rl: ppo is invalid; expected one of dpo, orpo, simpo, kto, grpo or null" },
        { Minimal + "rl: dpo\n",
            "datasets.0.type: alpaca is a supervised format but rl is dpo; expected a preference type (preference, chat_template.default, chat_template.argilla_chat, chatml.argilla, chatml.argilla_chat, chatml.icr, chatml.intel, chatml.prompt_pairs, chatml.ultra, llama3.default, llama3.argilla_chat, llama3.icr, llama3.intel, llama3.prompt_pairs, llama3.ultra, chat_template.argilla)" },
        { Model + "datasets:\n  - type: alpaca\n", "datasets.0.path: missing; expected a local file or folder, or a Hugging Face dataset id" },
        { Model + "datasets:\n  - path: d.jsonl\n    type: alpacca\n",
            "datasets.0.type: alpacca is invalid; expected one of alpaca, alpaca_chat, sharegpt, chat_template, completion, pretrain, input_output, preference, chat_template.default, chat_template.argilla_chat, chatml.argilla, chatml.argilla_chat, chatml.icr, chatml.intel, chatml.prompt_pairs, chatml.ultra, llama3.default, llama3.argilla_chat, llama3.icr, llama3.intel, llama3.prompt_pairs, llama3.ultra, chat_template.argilla, kto, llama3.argilla, prompt" },
        { Model + "datasets:\n  - path: d.jsonl\n    type: chat_template\n    train_on_eos: first\n",
            "datasets.0.train_on_eos: first is invalid; expected one of all, turn, last, none or null" },
        { Model + "datasets:\n  - path: d.jsonl\n    type: chatml.intel\n",
            "datasets.0.type: chatml.intel is a preference format but rl is not set; expected rl: dpo, orpo, simpo or kto, or a supervised type (alpaca, alpaca_chat, sharegpt, chat_template, completion, pretrain, input_output)" },
        { Model + "datasets: data.jsonl\n", "datasets: data.jsonl is invalid; expected a list of datasets (mappings with path and type)" },
        { Data, "base_model: missing; expected a model folder (HF layout) or a Hugging Face repo id" },
        { Model, "datasets: missing; expected a list of datasets, each with path and type" },
        { Minimal + "device: gpu\n", "device: gpu is invalid; expected auto, cpu, cuda or cuda:N" },
        { Minimal + "eval_steps: 10\nevals_per_epoch: 2\n", "eval_steps: 10 and evals_per_epoch: 2 are both set; expected one of them" },
        { Minimal + "lr_scheduler: cosine_with_min_lr\n", "lr_scheduler: cosine_with_min_lr needs cosine_min_lr_ratio; expected a number in [0, 1]" },
        { Minimal + "early_stopping_patience: 2\n",
            "early_stopping_patience: 2 needs evaluation; expected val_set_size > 0 or test_datasets, with do_eval: true" },
        { (Minimal + "rl: dpo\nsample_packing: true\n").Replace("type: alpaca", "type: chatml.intel"),
            "sample_packing: true is not supported with rl: dpo; expected sample_packing: false" },
        { Minimal + "merge_lora: true\n", "merge_lora: true needs an adapter; expected adapter: lora or qlora" },
        { Minimal + "val_set_size: 2.5\n", "val_set_size: 2.5 is invalid; expected a fraction in [0, 1) or a whole row count" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ValidateRejectsWithOneLineAndExitCode2(string yaml, string expected)
    {
        string path = Write(yaml);
        var (exit, stdout, err) = RunCli("validate", path);
        Assert.Equal($"error: {path}: {expected}\n", err);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
    }

    [Fact]
    public void LoraRMinusOneNamesLoraR()
    {
        string path = Write("base_model: org/model\ndatasets:\n  - path: d.jsonl\n    type: alpaca\nadapter: lora\nlora_r: -1\n");
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.StartsWith($"error: {path}: lora_r: -1 is invalid", err);
    }

    [Fact]
    public void YamlSyntaxErrorGivesLineAndColumn()
    {
        string path = Write("base_model: org/model\ndatasets:\n  - path: d.jsonl\n   type: alpaca\n");
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.StartsWith($"error: {path}:4:", err);
        Assert.Contains("YAML syntax error", err);
        Assert.Single(err.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void JsonSyntaxErrorGivesLine()
    {
        string path = Write("{\n  \"base_model\": \"org/model\",\n  \"datasets\": [,]\n}\n", "job.json");
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.StartsWith($"error: {path}:3:", err);
        Assert.Contains("JSON syntax error", err);
    }

    [Fact]
    public void MissingFileIsExit2()
    {
        string path = Path.Combine(TestPaths.TempDir(), "nope.yaml");
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.Equal($"error: {path}: config file not found\n", err);
    }

    [Fact]
    public void DuplicateKeyIsExit2()
    {
        string path = Write(Minimal + "lora_r: 8\nlora_r: 16\n");
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.StartsWith($"error: {path}", err);
        Assert.Contains("lora_r", err);
    }

    [Fact]
    public void LocalBaseModelFolderMustHoldConfigJson()
    {
        string dir = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "model"));
        string path = Path.Combine(dir, "c.yaml");
        File.WriteAllText(path, "base_model: model\n" + Data);
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.Equal($"error: {path}: base_model: folder {Path.Combine(dir, "model")} has no config.json; expected a folder in Hugging Face layout\n", err);

        File.WriteAllText(path, "base_model: ./missing-model\n" + Data);
        (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.Equal($"error: {path}: base_model: folder ./missing-model not found; expected a local folder or a Hugging Face repo id (owner/name)\n", err);
    }
}

public sealed class ConfigValueFormTests
{
    [Fact]
    public void BooleansAcceptYamlWordsAndBf16AcceptsAutoAndFull()
    {
        var c = SharpTune.Config.ConfigLoader.Load(Write(Minimal + "sample_packing: yes\ntrain_on_inputs: False\nbf16: full\n"), [], _ => { });
        Assert.True(c.SamplePacking);
        Assert.False(c.TrainOnInputs);
        Assert.Equal(SharpTune.Config.Bf16Mode.Full, c.Bf16);
    }

    [Fact]
    public void SetNullClearsAKey()
    {
        var c = SharpTune.Config.ConfigLoader.Load(Write(Minimal + "adapter: lora\nlora_r: 8\nmax_steps: 5\n"),
            ["adapter=null", "max_steps="], _ => { });
        Assert.Null(c.Adapter);
        Assert.Null(c.MaxSteps);
    }

    [Fact]
    public void NullDatasetEntryNamesItsIndex()
    {
        string path = Write("base_model: org/model\ndatasets:\n  - path: a\n    type: alpaca\n  -\n");
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.Equal($"error: {path}: datasets.1: null is invalid; expected a mapping with path and type\n", err);
    }

    [Fact]
    public void LoraModelDirMustHoldAdapterConfig()
    {
        string dir = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "adapter"));
        string path = Path.Combine(dir, "c.yaml");
        File.WriteAllText(path, Minimal + "adapter: lora\nlora_r: 8\nlora_model_dir: adapter\n");
        var (exit, _, err) = RunCli("validate", path);
        Assert.Equal(2, exit);
        Assert.Equal($"error: {path}: lora_model_dir: folder {Path.Combine(dir, "adapter")} has no adapter_config.json; expected a folder in Hugging Face layout\n", err);
    }

    [Fact]
    public void QloraImpliesLoadIn4bitAndIgnoredLoraKeysWarn()
    {
        var q = SharpTune.Config.ConfigLoader.Load(Write(Minimal + "adapter: qlora\nlora_r: 16\n"), [], _ => { });
        Assert.True(q.LoadIn4bit);
        Assert.Equal(16, q.LoraAlpha);

        var warnings = new List<string>();
        string path = Write(Minimal + "lora_r: 16\n");
        SharpTune.Config.ConfigLoader.Load(path, [], warnings.Add);
        Assert.Equal([$"{path}: lora_r is ignored because adapter is not set (full fine-tuning)"], warnings);
    }
}
