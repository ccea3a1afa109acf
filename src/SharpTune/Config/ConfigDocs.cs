using System.Text;

namespace SharpTune.Config;

/// <summary>Generates docs/config.md from the key table, so the reference cannot drift from the code.</summary>
public static class ConfigDocs
{
    public static string Generate()
    {
        var sb = new StringBuilder();
        sb.Append("""
            # Configuration reference

            <!-- Generated from the [Key] declarations in src/SharpTune/Config/ (TrainConfig.cs, DatasetConfig.cs, TrlConfig.cs;
                 axolotl-only keys in ConfigSchema.Axolotl.cs). Do not edit by hand; regenerate with
                 SHARPTUNE_REGEN_DOCS=1 dotnet test tests/SharpTune.Tests --filter FullyQualifiedName~DocsMatchTheKeyTable -->

            A run is one YAML file with [axolotl](https://github.com/axolotl-ai-cloud/axolotl)'s key names; most axolotl
            configs load unchanged. Check a config without training:

            ```
            sharptune validate CONFIG.yaml [--set key=value ...]
            ```

            `validate` makes every check `train` makes before its first step (one preflight for both): the files the
            config names, the model (a supported `model_type`; `sequence_len` within `max_position_embeddings`, or what
            `rope_scaling` extends it to; `lora_target_modules` naming linear layers the model has) and the data, read,
            templated, tokenized and split as training reads it (missing files, empty folders, bad rows, no chat template,
            rows all longer than `sequence_len`, `val_set_size` larger than the data). It writes nothing. Data on the
            Hugging Face hub is not fetched by `validate` (`data        not checked here: ...`; `sharptune prepare` checks it).

            - **Formats.** YAML, or the same keys as JSON (`.json`, or text starting with `{`). A JSON job request
              `{"input": {"args": {...config keys...}}}` (RunPod-worker style) is accepted as well; its
              `input.credentials.hf_token` is the Hugging Face token of the run (never written to checkpoints or cards).
            - **Relative paths** (`base_model`, dataset `path`, `output_dir`, ...) are relative to the config file's folder,
              so a config runs the same from any working directory. `base_model` and dataset paths that do not exist
              there are taken as Hugging Face repo ids and fetched into the HF cache on first use ([hub](hub.md)).
            - **Types.** Numbers may be written as strings (`learning_rate: "2e-4"`, as axolotl accepts). Booleans are
              `true`/`false` (also `yes`/`no`). `null`, `~` or an empty value means "not set": the default applies.
            - **Overrides.** `--set key=value` (repeatable) replaces a key after the file is read and is typed like the key:
              `--set learning_rate=1e-4`, `--set sample_packing=true`, `--set lora_target_modules=q_proj,v_proj`,
              `--set datasets.0.path=data/other.jsonl`, `--set special_tokens.pad_token="<pad>"`. An index one past the
              end appends (`datasets.1.path=...`). An unknown key in `--set` is an error.
            - **Every key has a class.** A key SharpTune reads is honoured. A key that does not change the trained weights
              (experiment trackers, attention kernels, Liger / cut-cross-entropy, `torch_compile`, launcher and hub
              settings) is accepted and named once, in one line: `warning: config.yaml: not used here: wandb_project,
              attn_implementation, liger_rms_norm`. A key that would change what is trained or how and that this build
              cannot do (LISA, ReLoRA, LoftQ, QAT, ...) stops `validate` and `train` with exit code 2, naming the key and
              what to do: `config.yaml: relora: true cannot be honoured: ReLoRA (periodic merge-and-restart of the adapter)
              is not implemented; ...`. An empty or false value (`wandb_project:`, `relora: false`) asks for nothing and is
              not mentioned. Both lists are below ([not used here](#accepted-not-used-here), [refused](#refused-changes-training-not-supported)).
            - **Unknown keys** are an error naming the nearest known key of the same meaning
              (`config.yaml: unknown key 'lora_alpah' (did you mean 'lora_alpha'?); remove it, or set strict: false to accept unknown keys`),
              as in `--set`. With `strict: false` they are a warning and have no effect. All problems of a file are
              listed together.
            - **YAML 1.1 numbers** as PyYAML reads them: `sequence_len: 500_000` is 500000.
            - **Syntax errors** name `FILE:LINE:COLUMN` and what was expected (`config.yaml:2:22: YAML syntax error: this '['
              is never closed; expected ',' or ']'`); a tab in the indentation is reported at its own line. A config is at
              most 4 MiB, nests at most 64 levels, and its aliases may expand to at most 100000 values (an alias bomb
              stops at once, in bounded memory).
            - **Invalid values** stop with exit code 2 and one line naming the file, the key, the value and what is allowed:
              `config.yaml: lora_r: -1 is invalid; expected an integer ≥ 1`. Incompatible settings (both `bf16: true` and
              `fp16: true`, `load_in_4bit` without `adapter: qlora`, an adapter without `lora_r`, a preference dataset
              without `rl`, ...) are rejected the same way, before anything runs.

            """);
        foreach (var section in ConfigSchema.TrainKeys.Select(k => k.Section).Distinct())
        {
            sb.Append("\n## ").Append(section).Append("\n\n");
            var keys = ConfigSchema.TrainKeys.Where(k => k.Section == section).ToList();
            if (keys.All(k => k.Type is ConfigValueType.Ignored or ConfigValueType.Refused)) Grouped(sb, keys);
            else Table(sb, keys, new TrainConfig());
        }
        sb.Append("\n## Dataset entries\n\nEach item of `datasets` and `test_datasets`:\n\n");
        Table(sb, ConfigSchema.DatasetKeys, new DatasetConfig());
        sb.Append("\n## trl entries\n\nKeys of the `trl:` mapping (rl: grpo), named and defaulted as TRL's GRPOConfig; any other key there is an error. Also `--set trl.beta=0.04`.\n\n");
        Table(sb, ConfigSchema.TrlKeys, new TrlConfig());
        return sb.ToString();
    }

    /// <summary>Keys without a value of their own, by reason: "- `a`, `b`: why".</summary>
    private static void Grouped(StringBuilder sb, IReadOnlyList<ConfigKey> keys)
    {
        foreach (var group in keys.GroupBy(k => k.Doc))
            sb.Append("- ").Append(string.Join(", ", group.Select(k => "`" + k.Name + "`"))).Append(": ").Append(group.Key).Append('\n');
    }

    private static void Table(StringBuilder sb, IEnumerable<ConfigKey> keys, object defaults)
    {
        sb.Append("| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n");
        foreach (var k in keys)
        {
            string allowed = k.Type switch
            {
                ConfigValueType.Choice => string.Join(", ", k.Choices) + (k.Nullable ? ", null" : "") +
                    (k.ValueAliases.Count > 0 ? " (also " + string.Join(", ", k.ValueAliases.Keys) + ")" : ""),
                ConfigValueType.Integer or ConfigValueType.Number when k.Range != null => k.Range.Describe(),
                ConfigValueType.Text when k.PatternText != null => k.PatternText,
                _ => "",
            };
            string @default = k.Type is ConfigValueType.Ignored or ConfigValueType.Refused ? "" : k.DefaultText ?? DefaultValue(k.Property!.GetValue(defaults));
            string name = "`" + k.Name + "`" + (k.KeyAliases.Count > 0 ? " (also " + string.Join(", ", k.KeyAliases.Select(a => "`" + a + "`")) + ")" : "");
            sb.Append("| ").Append(name)
              .Append(" | ").Append(Cell(k.TypeText))
              .Append(" | ").Append(Cell(@default))
              .Append(" | ").Append(Cell(allowed))
              .Append(" | ").Append(Cell(k.Doc)).Append(" |\n");
        }
    }

    private static string DefaultValue(object? value) => value is string s ? s : ConfigWriter.Scalar(value);

    private static string Cell(string text) => text.Replace("|", "\\|").Replace("\n", " ");
}
