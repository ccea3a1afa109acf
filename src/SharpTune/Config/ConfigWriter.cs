using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace SharpTune.Config;

/// <summary>Writes a config back as YAML with every key (checkpoints store it; loading it again gives the same record).</summary>
public static class ConfigWriter
{
    public static string ToYaml(TrainConfig config)
    {
        var sb = new StringBuilder();
        foreach (var key in ConfigSchema.TrainKeys.Where(k => k.Property != null))
        {
            object? value = key.Property!.GetValue(config);
            if (value is IReadOnlyList<DatasetConfig> datasets)
            {
                if (datasets.Count == 0) { sb.Append(key.Name).Append(": []\n"); continue; }
                sb.Append(key.Name).Append(":\n");
                foreach (var d in datasets)
                {
                    string lead = "  - ";
                    foreach (var sub in ConfigSchema.DatasetKeys)
                    {
                        sb.Append(lead).Append(sub.Name).Append(": ").Append(Scalar(sub.Property!.GetValue(d))).Append('\n');
                        lead = "    ";
                    }
                }
                continue;
            }
            if (key.Type == ConfigValueType.Section)
            {
                sb.Append(key.Name).Append(":\n");
                foreach (var sub in key.SubKeys!) sb.Append("  ").Append(sub.Name).Append(": ").Append(Scalar(sub.Property!.GetValue(value))).Append('\n');
                continue;
            }
            sb.Append(key.Name).Append(": ").Append(Scalar(value)).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>A value as YAML flow text (strings JSON-quoted, which YAML reads back unchanged).</summary>
    public static string Scalar(object? value) => value switch
    {
        null => "null",
        bool b => b ? "true" : "false",
        int i => i.ToString(CultureInfo.InvariantCulture),
        double d => d.ToString("R", CultureInfo.InvariantCulture).Replace('E', 'e'),
        string s => JsonSerializer.Serialize(s),
        Enum e => ConfigNames.ToSnake(e.ToString()),
        IReadOnlyDictionary<string, string> map =>
            "{" + string.Join(", ", map.Select(kv => $"{JsonSerializer.Serialize(kv.Key)}: {JsonSerializer.Serialize(kv.Value)}")) + "}",
        IReadOnlyDictionary<string, IReadOnlyList<string>> roles =>
            "{" + string.Join(", ", roles.Select(kv => $"{JsonSerializer.Serialize(kv.Key)}: {Scalar(kv.Value)}")) + "}",
        IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(Scalar)) + "]",
        _ => throw new ArgumentException($"no YAML form for {value.GetType().Name}"),
    };
}
