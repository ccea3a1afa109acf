namespace SharpTune.Config;

/// <summary>
/// Declares a record property as a config key: the one place a key is written. ConfigSchema derives the rest from the
/// property: the name is its snake_case form (LoadIn4bit → load_in_4bit), the value type its C# type, the default its
/// initializer (read from a freshly constructed record), and the allowed values of an enum-typed key the enum's members.
/// </summary>
/// <param name="doc">
/// The meaning, as docs/config.md shows it. <c>{=list}</c> stands for one of the value lists of
/// <see cref="ConfigSchema.DocLists"/> (chat template names, dataset formats), written out comma-separated.
/// </param>
[AttributeUsage(AttributeTargets.Property)]
public sealed class KeyAttribute(string doc) : Attribute
{
    public string Doc { get; } = doc;
    /// <summary>Allowed numbers: "≥ 1", "> 0", "≤ 5", "&lt; 5" or an interval "[0, 1)" (read by <see cref="NumberRange.Parse"/>).</summary>
    public string? Range { get; set; }
    /// <summary>The default in words, where the record's initializer needs them (lora_alpha: "lora_r").</summary>
    public string? Default { get; set; }
    /// <summary>Resolve a relative value against the config file's folder (always, or only when that path exists).</summary>
    public PathResolution Paths { get; set; }
    /// <summary>A text key's accepted shape as a regular expression, and <see cref="PatternText"/> saying it in words.</summary>
    public string? Pattern { get; set; }
    public string? PatternText { get; set; }
    /// <summary>A text key that also takes a mapping, kept as its JSON text (deepspeed: a file path or the object).</summary>
    public bool AcceptsMapping { get; set; }
    /// <summary>A text key where axolotl also takes a mapping SharpTune does not: what that mapping is and what to use instead.</summary>
    public string? MappingRefusal { get; set; }
}

/// <summary>Other spellings of a key (on a record property) or of a value (on an enum member), read as the declared one.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class AliasAttribute(params string[] names) : Attribute
{
    public IReadOnlyList<string> Names { get; } = names;
}

/// <summary>
/// An enum member that is an allowed spelling but a setting this build cannot honour; naming it stops the load with
/// "KEY: VALUE cannot be honoured: REASON".
/// </summary>
[AttributeUsage(AttributeTargets.Field)]
public sealed class RefusedValueAttribute(string reason) : Attribute
{
    public string Reason { get; } = reason;
}

/// <summary>Starts a section of docs/config.md: this key and those declared after it, up to the next section.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SectionAttribute(string title) : Attribute
{
    public string Title { get; } = title;
}

/// <summary>Marks a record property that is not read from the config file (the key table skips it).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class NotAConfigKeyAttribute : Attribute;
