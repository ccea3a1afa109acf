namespace SharpTune.Config;

/// <summary>Turns the untyped tree into records, key by key, through the schema table.</summary>
internal static class ConfigBinder
{
    public static TrainConfig BindTrain(MapNode root, ParseContext ctx, ISet<string> present) =>
        Bind(new TrainConfig(), root, ConfigSchema.TrainKeys, ctx, present);

    public static DatasetConfig BindDataset(MapNode entry, ParseContext ctx) =>
        Bind(new DatasetConfig(), entry, ConfigSchema.DatasetKeys, ctx, new HashSet<string>());

    /// <summary>A nested mapping (trl:) bound through its own table; its unknown keys are refused, not warned about.</summary>
    public static object BindSection(Type record, MapNode map, IReadOnlyList<ConfigKey> keys, ParseContext ctx) =>
        Bind(Activator.CreateInstance(record)!, map, keys, ctx, new HashSet<string>(), strict: true);

    private static T Bind<T>(T record, MapNode map, IReadOnlyList<ConfigKey> keys, ParseContext ctx, ISet<string> present, bool strict = false)
        where T : class
    {
        var seen = new Dictionary<string, string>(); // canonical name → name as written
        var problems = new List<string>();   // every bad value, so that one answer lists them all
        foreach (var (name, node) in map.Entries)
        {
            var key = keys.FirstOrDefault(k => k.Name == name) ?? keys.FirstOrDefault(k => k.KeyAliases.Contains(name));
            if (key == null)
            {
                if (strict)
                {
                    var nearest = KeySuggester.Nearest(name, keys.Select(k => k.Name));
                    throw new InvalidInputException($"{ctx.Source}: {ctx.Prefix}{name} is not supported by this build" +
                        (nearest == null ? "" : $" (did you mean '{ctx.Prefix}{nearest}'?)") + $"; supported: {string.Join(", ", keys.Select(k => k.Name))}");
                }
                // An unknown key may be one that changes training: it stops the run unless the file says strict: false.
                if (ctx.AllowUnknown) ctx.Warn(UnknownKeyMessage(ctx.Source, ctx.Prefix, name, keys));
                else (ctx.KeyProblems ?? problems).Add(UnknownKeyMessage(ctx.Source, ctx.Prefix, name, keys) + "; remove it, or set strict: false to accept unknown keys");
                continue;
            }
            if (seen.TryGetValue(key.Name, out var other))
            {
                problems.Add($"{ctx.Source}: {ctx.Prefix}{name} and {ctx.Prefix}{other} are the same key; give it once");
                continue;
            }
            seen[key.Name] = name;
            if (key.Type == ConfigValueType.Ignored)
            {
                if (!ConfigKey.IsOff(node)) ctx.NotUsed?.Add(ctx.Prefix + name);
                continue;
            }
            if (key.Type == ConfigValueType.Refused)
            {
                bool off = key.OffValues.Count == 0 ? ConfigKey.IsOff(node)
                    : node is ScalarNode { Text: var text } && (string.IsNullOrWhiteSpace(text) || key.OffValues.Contains(text.Trim().ToLowerInvariant()));
                if (!off)
                    (ctx.KeyProblems ?? problems).Add($"{ctx.Source}: {ctx.Prefix}{name}: {ConfigTree.Show(node)} cannot be honoured: {key.Doc}{ctx.FromSet(node)}");
                continue;
            }
            object? value;
            try
            {
                value = key.Parse(node, ctx);
            }
            catch (InvalidInputException e)
            {
                problems.AddRange(ConfigProblemsException.Of(e));
                continue;
            }
            if (value == null) continue; // null = not set: the default stays
            // Records are immutable to their users; the binder fills the fresh instance before anyone sees it.
            key.Property!.SetValue(record, value);
            present.Add(key.Name);
        }
        if (problems.Count > 0) throw new ConfigProblemsException(problems);
        return record;
    }

    /// <summary>Whether a warning is the unknown-key one of <see cref="UnknownKeyMessage"/> (a job service refuses those outright).</summary>
    public static bool IsUnknownKeyMessage(string warning) => warning.Contains(": unknown key '", StringComparison.Ordinal);

    public static string UnknownKeyMessage(string source, string prefix, string name, IReadOnlyList<ConfigKey> keys)
    {
        // Suggest only keys that do something here: a key read the same way under another spelling, never one that is
        // merely near in letters but refused or unused (lisa_n_layer is not "did you mean lora_r").
        var nearest = KeySuggester.Nearest(name, keys.Where(k => k.Type is not (ConfigValueType.Ignored or ConfigValueType.Refused))
            .SelectMany(k => k.KeyAliases.Prepend(k.Name)));
        return $"{source}: unknown key '{prefix}{name}'" + (nearest == null ? "" : $" (did you mean '{prefix}{nearest}'?)");
    }
}

/// <summary>Finds the known key a mistyped one was probably meant to be.</summary>
public static class KeySuggester
{
    /// <summary>The closest known name by Damerau-Levenshtein distance, or null when none is close enough to be a typo.</summary>
    public static string? Nearest(string unknown, IEnumerable<string> known)
    {
        string u = unknown.ToLowerInvariant();
        int limit = Math.Clamp(u.Length / 3, 1, 3);
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var name in known)
        {
            int d = Distance(u, name);
            if (d < bestDistance) (best, bestDistance) = (name, d);
        }
        if (best != null && bestDistance <= limit) return best;
        // A word of a longer key ("epochs" → "num_epochs") is a likely intent too.
        return u.Length >= 5 ? known.FirstOrDefault(k => k.Split('_').Contains(u) || k.EndsWith("_" + u) || k.StartsWith(u + "_")) : null;
    }

    /// <summary>Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent transpositions.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
        for (int j = 1; j <= b.Length; j++)
        {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
        }
        return d[a.Length, b.Length];
    }
}
