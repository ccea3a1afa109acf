namespace SharpTune.Config;

/// <summary>Reads a training config (YAML, JSON, or a JSON job request), applies --set overrides and validates it.</summary>
public static class ConfigLoader
{
    /// <summary>
    /// Loads <paramref name="path"/>, applies <paramref name="overrides"/> ("key=value", dotted keys for nested values),
    /// resolves relative paths against the file's folder and rejects invalid or incompatible settings
    /// (InvalidInputException, one line). Unknown and ignored keys go to <paramref name="warn"/>.
    /// </summary>
    public static TrainConfig Load(string path, IReadOnlyList<string> overrides, Action<string> warn)
    {
        if (Directory.Exists(path)) throw new InvalidInputException($"{path}: is a folder; expected a config file (.yaml or .json)");
        if (!File.Exists(path)) throw new InvalidInputException($"{path}: config file not found");
        ConfigTree.CheckSize(new FileInfo(path).Length, path);
        string text = File.ReadAllText(path);
        string baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        return FromText(text, path, baseDir, ConfigTree.LooksLikeJson(path, text), overrides, warn);
    }

    /// <summary>
    /// Same as <see cref="Load"/> for text that did not come from a file (a job request body): <paramref name="source"/>
    /// names it in messages and relative paths resolve against <paramref name="baseDirectory"/>.
    /// </summary>
    public static TrainConfig FromText(string text, string source, string baseDirectory, bool isJson,
        IReadOnlyList<string> overrides, Action<string> warn)
    {
        var node = isJson ? ConfigTree.ParseJson(text, source) : ConfigTree.ParseYaml(text, source);
        var root = node switch
        {
            null => new MapNode(),
            MapNode m => m,
            _ => throw new InvalidInputException($"{source}: the top level is {ConfigTree.Show(node)}; expected a mapping of config keys"),
        };
        var job = LooksLikeJobRequest(root) ? ReadJobRequest(text, isJson, source) : null;
        if (job != null) root = (MapNode)ConfigTree.ParseJson(job.Args.ToJsonString(), source);
        foreach (var arg in overrides) ApplyOverride(root, arg);
        MoveLegacyTokenMapping(root, source);
        // A request without output_dir writes into a folder named by its run_id, as the RunPod worker does.
        if (job?.RunId is { } runId && root.Get("output_dir") is null or ScalarNode { Text: null })
            root.Set("output_dir", new ScalarNode { Text = runId });

        var keyProblems = new List<string>();
        var notUsed = new List<string>();
        bool allowUnknown = root.Get("strict") is ScalarNode { Text: { } strict } && strict.Trim().ToLowerInvariant() is "false" or "no" or "off";
        var ctx = new ParseContext(source, warn, AllowUnknown: allowUnknown, NotUsed: notUsed, KeyProblems: keyProblems);
        LiftModelConfig(root, source, keyProblems);
        var present = new HashSet<string>();
        TrainConfig config;
        try
        {
            config = ConfigBinder.BindTrain(root, ctx, present);
        }
        catch (ConfigProblemsException e) when (keyProblems.Count > 0)
        {
            throw new ConfigProblemsException([.. keyProblems, .. e.Problems]);
        }
        // user_id and model_id label the job (the job service files it under user_id); they do not change the run.
        if (config.Plugins.Count > 0) notUsed.Add("plugins");
        if (job != null) notUsed.AddRange(new[] { ("input.user_id", job.UserId), ("input.model_id", job.ModelId) }.Where(f => !string.IsNullOrEmpty(f.Item2)).Select(f => f.Item1));
        // One short line for everything accepted that does not change the result (logging backends, kernels, hub settings).
        if (notUsed.Count > 0) warn($"{source}: not used here: {string.Join(", ", notUsed)}");
        config = ResolvePaths(config, ConfigSchema.TrainKeys, baseDirectory) with { HubToken = job?.HfToken };
        try
        {
            config = ConfigValidator.Validate(config, present, source, warn);
        }
        catch (ConfigProblemsException e) when (keyProblems.Count > 0)
        {
            throw new ConfigProblemsException([.. keyProblems, .. e.Problems]);
        }
        if (keyProblems.Count > 0) throw new ConfigProblemsException(keyProblems);
        return config;
    }

    /// <summary>RunPod-worker style requests carry the config as {"input": {"args": {...}}} (a file holding only those fields).</summary>
    private static bool LooksLikeJobRequest(MapNode root) =>
        root.Get("input") is MapNode && root.Get("base_model") == null && root.Entries.All(e => e.Key is "input" or "id" or "webhook" or "policy");

    /// <summary>
    /// The request read by the job service's own rules (<see cref="JobRequest"/>): input.run_id names the output
    /// folder when args has no output_dir, input.credentials.hf_token becomes <see cref="TrainConfig.HubToken"/>, and every
    /// malformed or unknown field is a problem. A saved request's job "id" is RunPod's, not ours, and is left out.
    /// </summary>
    private static JobRequest ReadJobRequest(string text, bool isJson, string source)
    {
        if (!isJson) throw new InvalidInputException($"{source}: looks like a job request ({{\"input\": {{\"args\": ...}}}}) but is not JSON; save it as .json");
        var body = System.Text.Json.Nodes.JsonNode.Parse(text, documentOptions: new System.Text.Json.JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = System.Text.Json.JsonCommentHandling.Skip })!.AsObject();
        body.Remove("id");
        try
        {
            var request = JobRequest.Parse(body.ToJsonString());
            if (request.Problems.Count > 0) throw new ConfigProblemsException(request.Problems.Select(p => $"{source}: {p}").ToList());
            return request;
        }
        catch (JobRequestException e)
        {
            throw new ConfigProblemsException(e.Problems.Select(p => $"{source}: {p}").ToList());
        }
    }

    /// <summary>
    /// model_config overrides values of the model's config.json. output_router_logits is a key of its own here and is
    /// read from it; any other override would change the model and is refused by name.
    /// </summary>
    private static void LiftModelConfig(MapNode root, string source, List<string> problems)
    {
        var node = root.Get("model_config");
        if (node is null || ConfigKey.IsOff(node)) { root.Entries.RemoveAll(e => e.Key == "model_config"); return; }
        root.Entries.RemoveAll(e => e.Key == "model_config");
        if (node is not MapNode overrides)
        {
            problems.Add($"{source}: model_config: {ConfigTree.Show(node)} is invalid; expected a mapping of config.json values");
            return;
        }
        foreach (var (name, value) in overrides.Entries)
        {
            if (name == "output_router_logits" && root.Get(name) is null) root.Set(name, value);
            else if (name != "output_router_logits")
                problems.Add($"{source}: model_config.{name}: {ConfigTree.Show(value)} cannot be honoured: overriding config.json values is not supported (only output_router_logits is read); edit the model's config.json");
        }
    }

    /// <summary>
    /// Old axolotl configs wrote the special tokens as a mapping under tokens (tokens: {bos_token: "&lt;s&gt;"}); that is
    /// special_tokens, merged into it (a token given both ways with different values is an error).
    /// </summary>
    private static void MoveLegacyTokenMapping(MapNode root, string source)
    {
        if (root.Get("tokens") is not MapNode legacy) return;
        root.Entries.RemoveAll(e => e.Key == "tokens");
        if (root.Get("special_tokens") is not MapNode special)
        {
            special = new MapNode { Override = legacy.Override };
            root.Set("special_tokens", special);
        }
        foreach (var (name, value) in legacy.Entries)
        {
            if (special.Get(name) is { } existing && (existing as ScalarNode)?.Text != (value as ScalarNode)?.Text)
                throw new InvalidInputException($"{source}: tokens.{name} and special_tokens.{name} differ; tokens as a mapping is the old name of special_tokens, give the token once");
            special.Set(name, value);
        }
    }

    /// <summary>Sets one "key=value" in the tree; the value is typed later by the key's type, like a value from the file.</summary>
    private static void ApplyOverride(MapNode root, string arg)
    {
        int eq = arg.IndexOf('=');
        if (eq <= 0) throw new InvalidInputException($"--set {arg}: expected key=value, e.g. --set learning_rate=1e-4");
        string[] path = arg[..eq].Trim().Split('.');
        string value = arg[(eq + 1)..];

        var key = ConfigSchema.FindTrainKey(path[0])
            ?? throw new InvalidInputException($"--set {arg}: " + UnknownKey(path[0], "", ConfigSchema.TrainKeys));
        // Drop other spellings of the same key (save_merged / merge_lora) so the override is the only value.
        root.Entries.RemoveAll(e => e.Key != key.Name && ConfigSchema.FindTrainKey(e.Key) == key);
        SetIn(root, key.Name, key, path.AsSpan(1), value, arg, key.Name);
    }

    private static void SetIn(MapNode map, string name, ConfigKey key, ReadOnlySpan<string> rest, string value, string arg, string shown)
    {
        if (rest.Length == 0)
        {
            map.Set(name, ValueNode(key, value, arg));
            return;
        }
        switch (key.Type)
        {
            case ConfigValueType.DatasetList:
            {
                var list = ListAt(map, name, arg);
                var entryNode = ElementAt(list, rest[0], arg, shown, () => new MapNode { Override = arg });
                if (entryNode is not MapNode entry)
                    throw new InvalidInputException($"--set {arg}: {shown}.{rest[0]} is {ConfigTree.Show(entryNode)}, not a dataset mapping");
                if (rest.Length == 1)
                    throw new InvalidInputException($"--set {arg}: expected {shown}.{rest[0]}.KEY=value, e.g. {shown}.{rest[0]}.path=data.jsonl");
                var sub = ConfigSchema.FindDatasetKey(rest[1])
                    ?? throw new InvalidInputException($"--set {arg}: " + UnknownKey(rest[1], $"{shown}.{rest[0]}.", ConfigSchema.DatasetKeys));
                SetIn(entry, sub.Name, sub, rest[2..], value, arg, $"{shown}.{rest[0]}.{sub.Name}");
                return;
            }
            case ConfigValueType.Section:
            {
                if (map.Get(name) is not MapNode section)
                {
                    section = new MapNode { Override = arg };
                    map.Set(name, section);
                }
                string part = rest[0];
                var sub = key.SubKeys!.FirstOrDefault(k => k.Name == part)
                    ?? throw new InvalidInputException($"--set {arg}: " + UnknownKey(part, $"{shown}.", key.SubKeys!));
                SetIn(section, sub.Name, sub, rest[1..], value, arg, $"{shown}.{sub.Name}");
                return;
            }
            case ConfigValueType.StringList when rest.Length == 1:
            {
                var list = ListAt(map, name, arg);
                int i = Index(rest[0], list.Items.Count, arg, shown);
                var scalar = PlainScalar(value, arg);
                if (i == list.Items.Count) list.Items.Add(scalar);
                else list.Items[i] = scalar;
                return;
            }
            case ConfigValueType.StringMap or ConfigValueType.RolesMap when rest.Length == 1:
            {
                if (map.Get(name) is not MapNode sub)
                {
                    sub = new MapNode { Override = arg };
                    map.Set(name, sub);
                }
                sub.Set(rest[0], key.Type == ConfigValueType.RolesMap ? ListValue(value, arg) : PlainScalar(value, arg));
                return;
            }
            default:
                throw new InvalidInputException($"--set {arg}: {shown} is {key.Expected}; it has no part '{rest[0]}'");
        }
    }

    private static ListNode ListAt(MapNode map, string name, string arg)
    {
        if (map.Get(name) is ListNode list) return list;
        list = new ListNode { Override = arg };
        map.Set(name, list);
        return list;
    }

    private static ConfigNode ElementAt(ListNode list, string index, string arg, string shown, Func<ConfigNode> create)
    {
        int i = Index(index, list.Items.Count, arg, shown);
        if (i == list.Items.Count) list.Items.Add(create());
        return list.Items[i];
    }

    private static int Index(string text, int count, string arg, string shown)
    {
        if (!int.TryParse(text, out int i) || i < 0 || i > count)
            throw new InvalidInputException(
                $"--set {arg}: {shown}.{text} is not an element; expected an index from 0 to {count} ({count} = append)");
        return i;
    }

    private static ConfigNode ValueNode(ConfigKey key, string value, string arg)
    {
        string t = value.Trim();
        if (t.StartsWith('[') || t.StartsWith('{'))
            return ConfigTree.ParseYaml(t, $"--set {arg}", arg) ?? PlainScalar("", arg);
        if (key.Type is ConfigValueType.StringList or ConfigValueType.NumberList or ConfigValueType.RolesMap) return ListValue(value, arg);
        return PlainScalar(value, arg);
    }

    /// <summary>"q_proj,v_proj" → [q_proj, v_proj].</summary>
    private static ConfigNode ListValue(string value, string arg)
    {
        var list = new ListNode { Override = arg };
        foreach (var part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            list.Items.Add(PlainScalar(part, arg));
        return list;
    }

    /// <summary>Like a plain YAML scalar: empty, null and ~ mean "not set".</summary>
    private static ScalarNode PlainScalar(string value, string arg) =>
        new() { Text = value.Trim() is "" or "null" or "~" ? null : value.Trim(), Override = arg };

    private static string UnknownKey(string name, string prefix, IReadOnlyList<ConfigKey> keys) =>
        ConfigBinder.UnknownKeyMessage("", prefix, name, keys)[2..];

    /// <summary>Every path key's value (ConfigSchema: Paths), defaults included, made absolute against the config file's folder.</summary>
    private static T ResolvePaths<T>(T record, IReadOnlyList<ConfigKey> keys, string baseDir) where T : class
    {
        // The records are the binder's fresh instances; nobody else holds them yet.
        foreach (var key in keys.Where(k => k.Property != null))
        {
            object? value = key.Property!.GetValue(record);
            if (key.Paths != PathResolution.None && value is string path)
                key.Property.SetValue(record, Resolve(path, baseDir, key.Paths));
            else if (value is IReadOnlyList<DatasetConfig> datasets)
                key.Property.SetValue(record, datasets.Select(d => ResolvePaths(d with { }, ConfigSchema.DatasetKeys, baseDir)).ToArray());
        }
        return record;
    }

    /// <summary>Relative paths mean "next to the config file", so a config runs the same from any working directory.</summary>
    public static string Resolve(string value, string baseDir, PathResolution how)
    {
        if (value.Contains('\n')) return value; // inline text (chat_template_jinja), not a path
        string expanded = value == "~" || value.StartsWith("~/")
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), value.TrimStart('~').TrimStart('/'))
            : value;
        if (Path.IsPathRooted(expanded)) return Path.GetFullPath(expanded);
        string candidate = Path.GetFullPath(Path.Combine(baseDir, expanded));
        return how == PathResolution.Always || File.Exists(candidate) || Directory.Exists(candidate) ? candidate : value;
    }
}
