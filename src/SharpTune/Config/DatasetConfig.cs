namespace SharpTune.Config;

/// <summary>One entry of datasets / test_datasets / pretraining_dataset (keys declared as in TrainConfig).</summary>
public sealed record DatasetConfig
{
    [Key("Local file or folder (relative to the config file), or a Hugging Face dataset id. Required.", Paths = PathResolution.IfExists)]
    public string? Path { get; init; }
    [Key("Row format. Supervised: {=sft_dataset_types}. Paired preference (rl: dpo, orpo, simpo, kto): {=paired_preference_dataset_types}" +
            ". Unpaired preference (rl: kto): {=unpaired_preference_dataset_types}. Prompts for online RL (rl: grpo): {=prompt_dataset_types}. Required.",
        MappingRefusal = "axolotl's user-defined formats (field_instruction/format/…, field_prompt/prompt_format/…) are not implemented; " +
                            "name a format instead (alpaca, chat_template with field_messages, chat_template.default with field_chosen/field_rejected, preference)")]
    public string? Type { get; init; }
    [Key("File format when the extension does not tell.", Default = "from the file extension")]
    public DatasetFileType? DsType { get; init; }
    [Key("Files inside path (or the hub dataset) to read; a string or a list.", Default = "all")]
    public IReadOnlyList<string> DataFiles { get; init; } = [];
    [Key("Split to read, with optional slices as in the datasets library: train, train[:2000], train[10%:20%], train[-500:], train[:50%]+test[:50%].")]
    public string Split { get; init; } = "train";
    [Key("Dataset configuration name (hub datasets): the NAME/ or data/NAME/ folder, or the configuration of the parquet conversion.")]
    public string? Name { get; init; }
    [Key("Branch, tag or commit of a Hugging Face dataset repo.", Default = "main")]
    public string? Revision { get; init; }
    [Key("Field holding the text (completion, pretrain), or a nested object holding the rows.")]
    public string? Field { get; init; }
    [Key("Field holding the text of pretraining_dataset rows (axolotl's name; field works too).", Default = "text")]
    public string? TextColumn { get; init; }
    [Key("Field holding the list of messages.", Default = "messages (conversations for sharegpt)")]
    public string? FieldMessages { get; init; }
    [Key("Instruction field (alpaca).", Default = "instruction")]
    public string? FieldInstruction { get; init; }
    [Key("Input field (alpaca).", Default = "input")]
    public string? FieldInput { get; init; }
    [Key("Output field (alpaca).", Default = "output")]
    public string? FieldOutput { get; init; }
    [Key("System prompt field.", Default = "system")]
    public string? FieldSystem { get; init; }
    [Key("Chosen response field (preference formats).", Default = "chosen")]
    public string? FieldChosen { get; init; }
    [Key("Rejected response field (preference formats).", Default = "rejected")]
    public string? FieldRejected { get; init; }
    [Key("Names of the message properties in the rows, e.g. {role: from, content: value}.", Default = "{role: role, content: content}")]
    public IReadOnlyDictionary<string, string> MessagePropertyMappings { get; init; } = new Dictionary<string, string>();
    [Key("Roles whose turns carry loss.", Default = "[assistant]")]
    public IReadOnlyList<string> RolesToTrain { get; init; } = [];
    [Key("Which end-of-turn tokens carry loss: all, turn (those of trained turns), last, none.", Default = "turn")]
    public TrainOnEos? TrainOnEos { get; init; }
    [Key("Which eot_tokens carry loss: all, turn (those closing trained turns), last, none. Used with the top-level eot_tokens.", Default = "train_on_eos")]
    public TrainOnEos? TrainOnEot { get; init; }
    [Key("Message property holding a per-turn true/false that overrides roles_to_train for that turn.", Default = "training")]
    public string? MessageFieldTraining { get; init; }
    [Key("Drop the conversation's first message when it is a system message.")]
    public bool DropSystemMessage { get; init; }
    [Key("Chat template for this dataset (same values as the top-level chat_template).", Default = "the top-level chat_template")]
    public string? ChatTemplate { get; init; }
    [Key("Jinja template text, or a path to a .jinja file, for this dataset's chat_template: jinja (as in axolotl, the top-level chat_template_jinja is not used for a dataset that names its own chat_template).", Paths = PathResolution.IfExists)]
    public string? ChatTemplateJinja { get; init; }
    [Key("Role names in the rows for each template role, e.g. {user: [human, user], assistant: [gpt]}.")]
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Roles { get; init; } = new Dictionary<string, IReadOnlyList<string>>();
    [Key("Sampling weight when mixing datasets.", Range = "> 0", Default = "1")]
    public double? Weight { get; init; }
    [Key("Accepted for compatibility: read the dataset in this many shards.", Range = "≥ 1")]
    public int? Shards { get; init; }
}
