using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;

namespace SharpTune.Config;

/// <summary>
/// How a key's value is read. Two kinds carry no value: Ignored (accepted, does not change what is trained: reported once in
/// the "not used here" line) and Refused (would change what is trained or how, and this build cannot do it: an error).
/// </summary>
public enum ConfigValueType { Bool, Integer, Number, Text, Choice, StringList, StringMap, NumberList, RolesMap, DatasetList, Section, Ignored, Refused }

/// <summary>
/// One row of the config table: a key's name, type, allowed values and meaning, as ConfigSchema reads them from the
/// key's declaration. Its default is the initializer of the record property.
/// </summary>
public sealed class ConfigKey
{
    public required string Name { get; init; }
    public required ConfigValueType Type { get; init; }
    public required string Doc { get; init; }
    public required string Section { get; init; }
    /// <summary>Allowed range for Integer/Number keys.</summary>
    public NumberRange? Range { get; init; }
    /// <summary>The C# enum behind a Choice key; its members' snake_case names are the allowed values.</summary>
    public Type? EnumType { get; init; }
    /// <summary>Other names this key may be written under.</summary>
    public IReadOnlyList<string> KeyAliases { get; init; } = [];
    /// <summary>For String keys: the accepted shape, and how to describe it.</summary>
    public Regex? Pattern { get; init; }
    public string? PatternText { get; init; }
    /// <summary>For Text keys: a mapping is accepted too and kept as its JSON text (deepspeed: a file path or the object).</summary>
    public bool AcceptsMapping { get; init; }
    /// <summary>For Text keys where axolotl also takes a mapping that SharpTune does not: what that mapping is and what to use instead.</summary>
    public string? MappingRefusal { get; init; }
    /// <summary>Besides empty/false: values of a Refused key that ask for what SharpTune does anyway (cosine_constant_lr_ratio: 0).</summary>
    public IReadOnlyList<string> OffValues { get; init; } = [];
    /// <summary>Default as shown in the docs when the record's default needs words (e.g. "lora_r").</summary>
    public string? DefaultText { get; init; }
    /// <summary>Resolve a relative value against the config file's folder (always, or only when that path exists).</summary>
    public PathResolution Paths { get; init; }
    /// <summary>For Section keys: the table of the nested mapping's keys (a key outside it is an error, not a warning).</summary>
    public IReadOnlyList<ConfigKey>? SubKeys { get; init; }
    /// <summary>The record property the value goes to; null for Ignored and Refused keys.</summary>
    public PropertyInfo? Property { get; init; }

    public bool Nullable => Property != null &&
        (System.Nullable.GetUnderlyingType(Property.PropertyType) != null ||
         new NullabilityInfoContext().Create(Property).WriteState == NullabilityState.Nullable);

    public IReadOnlyList<string> Choices =>
        EnumType == null ? [] : Enum.GetNames(EnumType).Select(ConfigNames.ToSnake).ToArray();

    /// <summary>Other spellings of a Choice key's values (the [Alias] of its enum's members): alias → value.</summary>
    public IReadOnlyDictionary<string, string> ValueAliases => EnumType == null ? new Dictionary<string, string>() :
        EnumType.GetFields(BindingFlags.Public | BindingFlags.Static)
            .SelectMany(f => (f.GetCustomAttribute<AliasAttribute>()?.Names ?? []).Select(alias => (alias, value: ConfigNames.ToSnake(f.Name))))
            .ToDictionary(a => a.alias, a => a.value);

    /// <summary>Why a Choice key's value cannot be honoured (its enum member's [RefusedValue]), or null.</summary>
    public string? RefusalOf(object? value) =>
        EnumType == null || value == null ? null : EnumType.GetField(value.ToString()!)?.GetCustomAttribute<RefusedValueAttribute>()?.Reason;

    /// <summary>What a valid value looks like, as the end of "…is invalid; expected …".</summary>
    public string Expected => Type switch
    {
        ConfigValueType.Bool => "true or false",
        ConfigValueType.Integer => Range == null ? "an integer" : $"an integer {Range.Describe()}",
        ConfigValueType.Number => Range == null ? "a number" : $"a number {Range.Describe()}",
        ConfigValueType.Text => PatternText ?? "a string",
        ConfigValueType.Choice => (Nullable ? "one of " + string.Join(", ", Choices) + " or null"
            : "one of " + string.Join(", ", Choices)),
        ConfigValueType.StringList => "a list of strings",
        ConfigValueType.StringMap => "a mapping of names to strings",
        ConfigValueType.NumberList => Range == null ? "a list of numbers" : $"a list of numbers {Range.Describe()}",
        ConfigValueType.Section => "a mapping of " + string.Join(", ", SubKeys?.Select(k => k.Name) ?? []),
        ConfigValueType.RolesMap => "a mapping of role names to lists of names",
        ConfigValueType.DatasetList => "a list of datasets (mappings with path and type)",
        _ => "any value",
    };

    /// <summary>The type column of the docs.</summary>
    public string TypeText => Type switch
    {
        ConfigValueType.Bool => "bool",
        ConfigValueType.Integer => "int",
        ConfigValueType.Number => "float",
        ConfigValueType.Text => "string",
        ConfigValueType.Choice => "choice",
        ConfigValueType.StringList => "list of strings",
        ConfigValueType.StringMap => "map string → string",
        ConfigValueType.NumberList => "list of floats",
        ConfigValueType.Section => "mapping",
        ConfigValueType.RolesMap => "map string → list of strings",
        ConfigValueType.DatasetList => "list of datasets",
        ConfigValueType.Refused => "refused",
        _ => "any (not used here)",
    };

    /// <summary>
    /// Whether a value leaves a feature off: empty, null, false, an empty list or mapping. Such a value of an Ignored or
    /// Refused key asks for nothing, so it is accepted without a word (`wandb_project:`, `relora: false`).
    /// </summary>
    internal static bool IsOff(ConfigNode node) => node switch
    {
        ScalarNode { Text: null } => true,
        ScalarNode { Text: var t } => t!.Trim() is "" || t.Trim().ToLowerInvariant() is "false" or "no" or "off" or "none" or "null",
        ListNode l => l.Items.Count == 0 || l.Items.All(IsOff),
        MapNode m => m.Entries.Count == 0,
        _ => false,
    };

    /// <summary>Turns a node into the property's value; null means "not set" (the default stays).</summary>
    internal object? Parse(ConfigNode node, ParseContext ctx)
    {
        if (node is ScalarNode { Text: null }) return null;
        switch (Type)
        {
            case ConfigValueType.Bool:
                return Scalar(node, ctx)?.ToLowerInvariant() switch
                {
                    "true" or "yes" or "on" => true,
                    "false" or "no" or "off" => false,
                    _ => throw Invalid(node, ctx),
                };
            case ConfigValueType.Integer:
            {
                string text = WithoutDigitSeparators(Scalar(node, ctx) ?? throw Invalid(node, ctx));
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ||
                    d != Math.Floor(d) || d < int.MinValue || d > int.MaxValue || (Range != null && !Range.Contains(d)))
                    throw Invalid(node, ctx);
                return (int)d;
            }
            case ConfigValueType.Number:
            {
                // YAML 1.1 readers (PyYAML, axolotl) see 2e-4 as a string; accept any numeric text like axolotl does.
                string text = WithoutDigitSeparators(Scalar(node, ctx) ?? throw Invalid(node, ctx));
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ||
                    !double.IsFinite(d) || (Range != null && !Range.Contains(d)))
                    throw Invalid(node, ctx);
                return d;
            }
            case ConfigValueType.Text:
            {
                if (AcceptsMapping && node is MapNode mapping) return ConfigTree.ToJson(mapping)!.ToJsonString();
                if (MappingRefusal != null && node is MapNode)
                    throw new InvalidInputException($"{ctx.Source}: {ctx.Prefix}{Name}: a mapping cannot be honoured: {MappingRefusal}{ctx.FromSet(node)}");
                string text = Scalar(node, ctx) ?? throw Invalid(node, ctx);
                if (Pattern != null && !Pattern.IsMatch(text)) throw Invalid(node, ctx);
                return text;
            }
            case ConfigValueType.Choice:
            {
                string text = (Scalar(node, ctx) ?? throw Invalid(node, ctx)).Trim().ToLowerInvariant();
                int i = Choices.ToList().IndexOf(ValueAliases.GetValueOrDefault(text, text));
                if (i < 0) throw Invalid(node, ctx);
                return Enum.GetValues(EnumType!).GetValue(i);
            }
            case ConfigValueType.StringList:
            {
                if (node is ScalarNode one) return new[] { one.Text! };
                if (node is not ListNode items) throw Invalid(node, ctx);
                return items.Items.Select(item => item is ScalarNode { Text: { } t } ? t : throw Invalid(item, ctx)).ToArray();
            }
            case ConfigValueType.NumberList:
            {
                IReadOnlyList<ConfigNode> items = node switch { ScalarNode one => new ConfigNode[] { one }, ListNode l => l.Items, _ => throw Invalid(node, ctx) };
                return items.Select(item => item is ScalarNode { Text: { } t } && double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double d)
                    && double.IsFinite(d) && (Range == null || Range.Contains(d)) ? d : throw Invalid(item, ctx)).ToArray();
            }
            case ConfigValueType.Section:
            {
                if (node is not MapNode section) throw Invalid(node, ctx);
                return ConfigBinder.BindSection(Property!.PropertyType, section, SubKeys!, ctx.Nested($"{ctx.Prefix}{Name}."));
            }
            case ConfigValueType.StringMap:
            {
                if (node is not MapNode map) throw Invalid(node, ctx);
                var result = new Dictionary<string, string>();
                foreach (var (k, v) in map.Entries)
                    result[k] = v is ScalarNode { Text: { } t } ? t : throw Invalid(v, ctx);
                return result;
            }
            case ConfigValueType.RolesMap:
            {
                if (node is not MapNode map) throw Invalid(node, ctx);
                var result = new Dictionary<string, IReadOnlyList<string>>();
                foreach (var (k, v) in map.Entries)
                    result[k] = v switch
                    {
                        ScalarNode { Text: { } t } => [t],
                        ListNode l => l.Items.Select(i => i is ScalarNode { Text: { } t } ? t : throw Invalid(i, ctx)).ToArray(),
                        _ => throw Invalid(v, ctx),
                    };
                return result;
            }
            case ConfigValueType.DatasetList:
            {
                if (node is not ListNode list) throw Invalid(node, ctx);
                var result = new List<DatasetConfig>();
                var problems = new List<string>();
                for (int i = 0; i < list.Items.Count; i++)
                {
                    if (list.Items[i] is not MapNode entry)
                    {
                        problems.Add($"{ctx.Source}: {ctx.Prefix}{Name}.{i}: {ConfigTree.Show(list.Items[i])} is invalid; expected a mapping with path and type{ctx.FromSet(list.Items[i])}");
                        continue;
                    }
                    try { result.Add(ConfigBinder.BindDataset(entry, ctx.Nested($"{ctx.Prefix}{Name}.{i}."))); }
                    catch (InvalidInputException e) { problems.AddRange(ConfigProblemsException.Of(e)); }
                }
                if (problems.Count > 0) throw new ConfigProblemsException(problems);
                return result;
            }
            default:
                return null;
        }
    }

    private static readonly Regex DigitSeparators = new(@"^[+-]?\d+(_\d+)+(\.\d+)?([eE][+-]?\d+)?$");

    /// <summary>YAML 1.1 (PyYAML, hence axolotl) reads 500_000 as the integer 500000; so do we.</summary>
    internal static string WithoutDigitSeparators(string text) => DigitSeparators.IsMatch(text.Trim()) ? text.Trim().Replace("_", "") : text;

    private string? Scalar(ConfigNode node, ParseContext ctx) =>
        node is ScalarNode s ? s.Text : throw Invalid(node, ctx);

    internal InvalidInputException Invalid(ConfigNode node, ParseContext ctx) =>
        new($"{ctx.Source}: {ctx.Prefix}{Name}: {ConfigTree.Show(node)} is invalid; expected {Expected}{ctx.FromSet(node)}");
}

/// <summary>How a path-valued key is made independent of the working directory.</summary>
public enum PathResolution
{
    None,
    /// <summary>Always relative to the config file's folder (output_dir).</summary>
    Always,
    /// <summary>Relative to the config file's folder when that path exists; otherwise kept (a hub id).</summary>
    IfExists,
}

/// <summary>
/// Where errors point and where warnings go while a file is bound. <paramref name="AllowUnknown"/> is strict: false (an
/// unknown key warns instead of stopping); <paramref name="NotUsed"/> collects the Ignored keys present, reported in one line;
/// <paramref name="KeyProblems"/> collects unknown and refused keys, which leave the other values intact, so that the
/// cross-key checks still run and one answer lists every problem.
/// </summary>
internal sealed record ParseContext(string Source, Action<string> Warn, string Prefix = "", bool AllowUnknown = false,
    List<string>? NotUsed = null, List<string>? KeyProblems = null)
{
    public string FromSet(ConfigNode node) => node.Override != null ? $" (from --set {node.Override})" : "";
    public ParseContext Nested(string prefix) => this with { Prefix = prefix };
}
