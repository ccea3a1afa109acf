using System.Reflection;
using System.Text.RegularExpressions;

namespace SharpTune.Config;

/// <summary>
/// The one table of config keys, read from the [Key] declarations of <see cref="TrainConfig"/>, <see cref="DatasetConfig"/>
/// and <see cref="TrlConfig"/> (plus the axolotl keys without a property, ConfigSchema.Axolotl.cs). It drives loading,
/// type checks, --set, unknown-key suggestions, the YAML writer and docs/config.md.
/// </summary>
public static partial class ConfigSchema
{
    /// <summary>Dataset row formats for supervised training.</summary>
    public static IReadOnlyList<string> SftDatasetTypes { get; } =
        ["alpaca", "alpaca_chat", "sharegpt", "chat_template", "completion", "pretrain", "input_output"];

    /// <summary>axolotl's layouts for rl: dpo / simpo (its prompt_strategies/dpo functions): paired rows.</summary>
    public static IReadOnlyList<string> DpoLayoutTypes { get; } =
    [
        "chat_template.default", "chat_template.argilla_chat",
        "chatml.argilla", "chatml.argilla_chat", "chatml.icr", "chatml.intel", "chatml.prompt_pairs", "chatml.ultra",
        "llama3.default", "llama3.argilla_chat", "llama3.icr", "llama3.intel", "llama3.prompt_pairs", "llama3.ultra",
    ];

    /// <summary>axolotl's layouts for rl: kto (its prompt_strategies/kto functions): unpaired rows with a completion and a label.</summary>
    public static IReadOnlyList<string> KtoLayoutTypes { get; } =
    [
        "chatml.argilla", "chatml.argilla_chat", "chatml.intel", "chatml.prompt_pairs", "chatml.ultra",
        "llama3.argilla", "llama3.argilla_chat", "llama3.intel", "llama3.prompt_pairs", "llama3.ultra",
    ];

    /// <summary>axolotl's layouts for rl: orpo (its prompt_strategies/orpo functions).</summary>
    public static IReadOnlyList<string> OrpoLayoutTypes { get; } = ["chat_template.argilla"];

    /// <summary>The preference types rl reads: SharpTune's own (preference; kto for unpaired rows) and axolotl's layouts for that trainer.</summary>
    public static IReadOnlyList<string> PreferenceTypesFor(RlType rl) => rl switch
    {
        RlType.Kto => ["preference", "kto", "chat_template.default", .. KtoLayoutTypes],
        RlType.Orpo => ["preference", "chat_template.default", .. OrpoLayoutTypes],
        _ => ["preference", .. DpoLayoutTypes],
    };

    /// <summary>Paired preference formats (prompt, chosen, rejected) for dpo/orpo/simpo (and kto, which unpairs them).</summary>
    public static IReadOnlyList<string> PairedPreferenceDatasetTypes { get; } = ["preference", .. DpoLayoutTypes, .. OrpoLayoutTypes];

    /// <summary>Unpaired preference formats (prompt, completion, label) for kto.</summary>
    public static IReadOnlyList<string> UnpairedPreferenceDatasetTypes { get; } = ["kto", .. KtoLayoutTypes.Except(DpoLayoutTypes)];

    /// <summary>Prompt formats for online RL (rl: grpo): a prompt (text or messages) plus any fields the rewards read.</summary>
    public static IReadOnlyList<string> PromptDatasetTypes { get; } = ["prompt"];

    /// <summary>The built-in reward functions trl.reward_funcs may name (docs/rl.md).</summary>
    public static IReadOnlyList<string> BuiltInRewards { get; } = ["exact_match", "regex_match", "tag_format", "think_format", "json_valid", "length_penalty"];

    /// <summary>The value lists a key's doc names as {=name}; they are written out where they are kept, never copied into a doc.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> DocLists { get; } = new Dictionary<string, IReadOnlyList<string>>
    {
        ["axolotl_chat_templates"] = Tokenization.BuiltInChatTemplates.AxolotlNames,
        ["sharptune_chat_templates"] = Tokenization.BuiltInChatTemplates.ExtraNames,
        ["sft_dataset_types"] = SftDatasetTypes,
        ["paired_preference_dataset_types"] = PairedPreferenceDatasetTypes,
        ["unpaired_preference_dataset_types"] = UnpairedPreferenceDatasetTypes,
        ["prompt_dataset_types"] = PromptDatasetTypes,
    };

    // Declared after the lists above: static initializers run in text order and the key docs read them.
    public static IReadOnlyList<ConfigKey> TrainKeys { get; } = NamedOnce([.. KeysOf(typeof(TrainConfig), "Model"), .. AxolotlKeys()]);
    public static IReadOnlyList<ConfigKey> DatasetKeys { get; } = NamedOnce(KeysOf(typeof(DatasetConfig), "Dataset entries"));
    /// <summary>Keys of the nested `trl:` mapping (TRL's GRPOConfig names).</summary>
    public static IReadOnlyList<ConfigKey> TrlKeys { get; } = TrainKeys.Single(k => k.Name == "trl").SubKeys!;

    public static IEnumerable<string> AllDatasetTypes =>
        SftDatasetTypes.Concat(PairedPreferenceDatasetTypes).Concat(UnpairedPreferenceDatasetTypes).Concat(PromptDatasetTypes);

    public static ConfigKey? FindTrainKey(string name) => Find(TrainKeys, name);
    public static ConfigKey? FindDatasetKey(string name) => Find(DatasetKeys, name);

    private static ConfigKey? Find(IReadOnlyList<ConfigKey> keys, string name) =>
        keys.FirstOrDefault(k => k.Name == name) ?? keys.FirstOrDefault(k => k.KeyAliases.Contains(name));

    /// <summary>
    /// The keys a record declares, in declaration order. Every public settable property is a [Key] or [NotAConfigKey];
    /// anything else is a programming error, raised when the table is first used.
    /// </summary>
    private static IReadOnlyList<ConfigKey> KeysOf(Type record, string firstSection)
    {
        var keys = new List<ConfigKey>();
        string section = firstSection;
        foreach (var property in record.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite).OrderBy(p => p.MetadataToken))
        {
            if (property.IsDefined(typeof(NotAConfigKeyAttribute), false)) continue;
            var declared = property.GetCustomAttribute<KeyAttribute>()
                ?? throw new InvalidOperationException($"{record.Name}.{property.Name} has neither [Key] nor [NotAConfigKey]");
            section = property.GetCustomAttribute<SectionAttribute>()?.Title ?? section;
            string name = ConfigNames.ToSnake(property.Name);
            if (ConfigNames.ToPascal(name) != property.Name)
                throw new InvalidOperationException($"{record.Name}.{property.Name}: its key name {name} does not map back to the property");
            var type = ValueTypeOf(property);
            if (declared.Range != null && type is not (ConfigValueType.Integer or ConfigValueType.Number or ConfigValueType.NumberList))
                throw new InvalidOperationException($"{record.Name}.{property.Name}: a range needs a number");
            if ((declared.Pattern != null || declared.AcceptsMapping || declared.MappingRefusal != null || declared.Paths != PathResolution.None) && type != ConfigValueType.Text)
                throw new InvalidOperationException($"{record.Name}.{property.Name}: a pattern, mapping or path rule needs a text key");
            var enumType = type == ConfigValueType.Choice ? System.Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType : null;
            keys.Add(new ConfigKey
            {
                Name = name, Type = type, Doc = ExpandDoc(declared.Doc, property), Section = section, Property = property,
                Range = declared.Range == null ? null : NumberRange.Parse(declared.Range), EnumType = enumType,
                DefaultText = declared.Default, Paths = declared.Paths,
                KeyAliases = property.GetCustomAttribute<AliasAttribute>()?.Names ?? [],
                Pattern = declared.Pattern == null ? null : new Regex(declared.Pattern), PatternText = declared.PatternText,
                AcceptsMapping = declared.AcceptsMapping, MappingRefusal = declared.MappingRefusal,
                SubKeys = type == ConfigValueType.Section ? NamedOnce(KeysOf(property.PropertyType, name + " entries")) : null,
            });
        }
        return keys;
    }

    /// <summary>A name or alias given to two keys (an axolotl key that gained a property, say) is a programming error.</summary>
    private static IReadOnlyList<ConfigKey> NamedOnce(IReadOnlyList<ConfigKey> keys)
    {
        var twice = keys.SelectMany(k => k.KeyAliases.Prepend(k.Name)).GroupBy(n => n).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (twice.Count > 0) throw new InvalidOperationException($"config keys declared twice: {string.Join(", ", twice)}");
        return keys;
    }

    /// <summary>A key's value type follows from its property's C# type.</summary>
    private static ConfigValueType ValueTypeOf(PropertyInfo property)
    {
        var t = System.Nullable.GetUnderlyingType(property.PropertyType) ?? property.PropertyType;
        if (t == typeof(bool)) return ConfigValueType.Bool;
        if (t == typeof(int)) return ConfigValueType.Integer;
        if (t == typeof(double)) return ConfigValueType.Number;
        if (t == typeof(string)) return ConfigValueType.Text;
        if (t.IsEnum) return ConfigValueType.Choice;
        if (t == typeof(IReadOnlyList<string>)) return ConfigValueType.StringList;
        if (t == typeof(IReadOnlyList<double>)) return ConfigValueType.NumberList;
        if (t == typeof(IReadOnlyDictionary<string, string>)) return ConfigValueType.StringMap;
        if (t == typeof(IReadOnlyDictionary<string, IReadOnlyList<string>>)) return ConfigValueType.RolesMap;
        if (t == typeof(IReadOnlyList<DatasetConfig>)) return ConfigValueType.DatasetList;
        if (t.IsClass && t.GetProperties().Any(p => p.IsDefined(typeof(KeyAttribute), false))) return ConfigValueType.Section;
        throw new InvalidOperationException($"{property.DeclaringType!.Name}.{property.Name}: no config value type reads {t.Name}");
    }

    private static string ExpandDoc(string doc, PropertyInfo property) => Regex.Replace(doc, @"\{=(\w+)\}", m =>
        DocLists.TryGetValue(m.Groups[1].Value, out var list) ? string.Join(", ", list)
            : throw new InvalidOperationException($"{property.DeclaringType!.Name}.{property.Name}: its doc names an unknown list {m.Value}"));
}
