using System.Text.Json;
using System.Text.Json.Nodes;
using Xunit.Abstractions;
using YamlDotNet.RepresentationModel;
using static SharpTune.Tests.ConfigTests.ConfigTestKit;

namespace SharpTune.Tests.ConfigTests;

/// <summary>
/// axolotl's own example configs (../shared/axolotl-examples), run as a new user would: each file unchanged except
/// base_model and dataset paths, pointed (with --set) at local stand-ins of the same family and row layout. validate
/// either passes with no word about a key that changes training, or fails naming every key it cannot honour; what
/// validates also prepares; a fixed set trains 2 steps.
/// </summary>
public sealed class AxolotlExamplesTests(ITestOutputHelper output)
{
    private static readonly string[] InScope =
        ["llama-2", "llama-3", "mistral", "qwen2", "gemma2", "phi", "archived/tiny-llama", "archived/gemma", "archived/qwen", "qwen3", "gemma3", "llama-4"];

    /// <summary>One of each kind of run: LoRA, QLoRA, full, packed, DPO, KTO, ORPO, chat_template, the RunPod request, streamed pretraining.</summary>
    private static readonly string[] Trained =
    [
        "llama-3/lora-1b.yml", "llama-3/qlora-1b.yml", "llama-3/fft-8b.yaml", "archived/tiny-llama/lora.yml",
        "llama-3/instruct-dpo-lora-8b.yml", "llama-3/qlora-1b-kto.yaml", "mistral/orpo/mistral-qlora-orpo.yml",
        "llama-3/instruct-lora-8b.yml", "runpod/test_input.json", "archived/tiny-llama/pretrain.yml",
    ];

    private sealed record Outcome(string Name, string Validate, string? Refusal, IReadOnlyList<string> Dropped, IReadOnlyList<string> OtherWarnings, string? Prepare, string? Train);

    [SkippableFact]
    public void EveryInScopeConfigIsHonouredOrRefusedByName()
    {
        string root = TestPaths.RequireShared("axolotl-examples");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string work = TestPaths.TempDir();
        var standIns = new StandIns(work);
        var files = InScope.SelectMany(d => Directory.EnumerateFiles(Path.Combine(root, "examples", d), "*.*", SearchOption.AllDirectories))
            .Where(f => f.EndsWith(".yml") || f.EndsWith(".yaml")).Order(StringComparer.Ordinal)
            .Select(f => Path.GetRelativePath(Path.Combine(root, "examples"), f))
            .Append("runpod/test_input.json").ToList();
        var outcomes = new List<Outcome>();
        foreach (var name in files)
        {
            string path = name.StartsWith("runpod/") ? Path.Combine(root, name) : Path.Combine(root, "examples", name);
            outcomes.Add(Run(name, path, standIns, Path.Combine(work, "runs", name.Replace('/', '_'))));
        }

        foreach (var o in outcomes)
            output.WriteLine($"{o.Name}: validate {o.Validate}" + (o.Refusal is null ? "" : $" — {o.Refusal}") +
                             (o.Dropped.Count > 0 ? $" — DROPPED: {string.Join("; ", o.Dropped)}" : "") +
                             (o.OtherWarnings.Count > 0 ? $" — warnings: {string.Join("; ", o.OtherWarnings)}" : "") +
                             (o.Prepare is null ? "" : $" — prepare {o.Prepare}") + (o.Train is null ? "" : $" — train {o.Train}"));
        int validated = outcomes.Count(o => o.Validate == "pass");
        int refused = outcomes.Count(o => o.Validate == "refused");
        int dropped = outcomes.Count(o => o.Dropped.Count > 0);
        int prepared = outcomes.Count(o => o.Prepare == "pass");
        int trained = outcomes.Count(o => o.Train == "pass");
        output.WriteLine($"{outcomes.Count} configs: validate pass {validated}, refused with reason {refused}, silently dropped {dropped}, " +
                         $"prepare pass {prepared} of {validated}, train pass {trained} of {Trained.Length} (2 steps); {clock.Elapsed.TotalSeconds:F0} s");

        Assert.Empty(outcomes.Where(o => o.Validate is not ("pass" or "refused")).Select(o => $"{o.Name}: {o.Validate} {o.Refusal}"));
        Assert.Equal(0, dropped);
        Assert.Empty(outcomes.Where(o => o.Validate == "pass" && o.Prepare != "pass").Select(o => $"{o.Name}: prepare {o.Prepare}"));
        Assert.Empty(outcomes.Where(o => Trained.Contains(o.Name) && o.Train != "pass").Select(o => $"{o.Name}: train {o.Train ?? "not run (" + o.Refusal + ")"}"));
    }

    private static Outcome Run(string name, string path, StandIns standIns, string runDir)
    {
        var overrides = Localize(name, path, standIns, runDir);
        var (exit, _, err) = RunCli(["validate", path, .. Sets(overrides)]);
        var warnings = err.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("warning: ")).Select(l => l["warning: ".Length..]).ToList();
        // A key accepted with only a warning that it is unknown might change training: that is a silently dropped key.
        var dropped = warnings.Where(w => w.Contains(": unknown key '")).ToList();
        var other = warnings.Where(w => !w.Contains(": unknown key '") && !w.Contains(": not used here: ")).ToList();
        if (exit != 0)
        {
            string error = err.Split('\n').FirstOrDefault(l => l.StartsWith("error: ")) ?? err;
            // Refused with a reason: every problem names the key it is about.
            var problems = error["error: ".Length..].Split("; ").Where(p => p.Contains(": ")).ToList();
            bool named = exit == 2 && problems.Count > 0;
            return new Outcome(name, named ? "refused" : $"failed (exit {exit})", Shorten(error, path), dropped, other, null, null);
        }
        var (prepareExit, _, prepareErr) = RunCli(["prepare", path, .. Sets(overrides)]);
        string prepare = prepareExit == 0 ? "pass" : $"failed: {Shorten(prepareErr.Split('\n').LastOrDefault(l => l.StartsWith("error")) ?? prepareErr.Trim(), path)}";
        string? train = null;
        if (Trained.Contains(name))
        {
            var (trainExit, _, trainErr) = RunCli(["train", path, .. Sets(overrides), .. Sets(TrainingScale()), "--set", "device=cpu"]);
            train = trainExit == 0 ? "pass" : $"failed (exit {trainExit}): {Shorten(trainErr.Trim().Split('\n').LastOrDefault(l => l.StartsWith("error")) ?? trainErr, path)}";
        }
        return new Outcome(name, "pass", null, dropped, other, prepare, train);
    }

    /// <summary>
    /// The recipe as configured, at the stand-in's scale: 2 steps (rows are already capped to the stand-in's positions
    /// by <see cref="Localize"/>; packing, accumulation, eval and saving stay as each config asks).
    /// </summary>
    private static IReadOnlyList<string> TrainingScale() => ["max_steps=2"];

    private static string Shorten(string text, string path) => text.Replace(path + ": ", "").Replace(path, "CONFIG");

    private static IEnumerable<string> Sets(IReadOnlyList<string> overrides) => overrides.SelectMany(o => new[] { "--set", o });

    /// <summary>--set overrides pointing base_model and every dataset at stand-ins; output folders go to a temp folder.</summary>
    private static IReadOnlyList<string> Localize(string name, string path, StandIns standIns, string runDir)
    {
        string model = standIns.Model(name);
        var sets = new List<string> { $"base_model={model}", $"output_dir={runDir}", $"dataset_prepared_path={Path.Combine(runDir, "prepared")}" };
        // The stand-ins have a few hundred positions; a real config's 2048-8192 would be refused as longer than the model supports.
        int positions = JsonNode.Parse(File.ReadAllText(Path.Combine(model, "config.json")))!["max_position_embeddings"]?.GetValue<int>() ?? 256;
        if (SequenceLen(path) is not { } length || length > positions) sets.Add($"sequence_len={positions}");
        foreach (var (list, entries) in DatasetEntries(path))
            for (int i = 0; i < entries.Count; i++)
            {
                var entry = entries[i];
                sets.Add($"{list}.{i}.path={standIns.Dataset(entry, list)}");
                foreach (var hubOnly in new[] { "name", "data_files", "revision" })
                    if (entry.ContainsKey(hubOnly)) sets.Add($"{list}.{i}.{hubOnly}=");
            }
        return sets;
    }

    /// <summary>The config's sequence_len (null when absent: the default of 512 is longer than a stand-in's positions too).</summary>
    private static int? SequenceLen(string path) =>
        int.TryParse(Root(path)["sequence_len"]?.ToString().Replace("_", ""), out int n) ? n : null;

    /// <summary>The dataset mappings of datasets / test_datasets, as JSON objects (YAML or JSON file, RunPod request unwrapped).</summary>
    private static IEnumerable<(string List, IReadOnlyList<JsonObject> Entries)> DatasetEntries(string path)
    {
        var root = Root(path);
        foreach (var list in new[] { "datasets", "test_datasets", "pretraining_dataset" })
            if (root[list] is JsonArray items)
                yield return (list, items.OfType<JsonObject>().ToList());
    }

    /// <summary>The config's top-level mapping as JSON (YAML or JSON file, RunPod request unwrapped).</summary>
    private static JsonObject Root(string path)
    {
        JsonObject root;
        if (path.EndsWith(".json"))
        {
            root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
            if (root["input"]?["args"] is JsonObject args) root = args;
        }
        else
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(File.ReadAllText(path)));
            root = (JsonObject)ToJson(stream.Documents[0].RootNode)!;
        }
        return root;
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode m => new JsonObject(m.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value!, ToJson(kv.Value)))),
        YamlSequenceNode s => new JsonArray(s.Children.Select(ToJson).ToArray()),
        YamlScalarNode { Value: var v } => v is null or "" or "~" or "null" ? null : JsonValue.Create(v),
        _ => null,
    };

    /// <summary>Tiny fixture models with the byte tokenizer, and small local datasets in the row layout a dataset entry asks for.</summary>
    private sealed class StandIns(string root)
    {
        private readonly Dictionary<string, string> models = new();
        private int datasets;

        public string Model(string config)
        {
            string family = config switch
            {
                _ when config.StartsWith("mistral/mixtral") || config.StartsWith("mistral/bigstral") => "hf-tiny-new/mixtral",
                _ when config.StartsWith("mistral") => "hf-tiny/mistral",
                _ when config.StartsWith("qwen3") && (config.Contains("a3b") || config.Contains("moe")) => "hf-tiny-new/qwen3_moe",
                _ when config.StartsWith("qwen3") => "hf-tiny-new/qwen3",
                _ when config.StartsWith("qwen2") || config.StartsWith("archived/qwen") => "hf-tiny/qwen2",
                _ when config.StartsWith("gemma2") => "hf-tiny/gemma2",
                _ when config.StartsWith("gemma3") => "hf-tiny-new/gemma3",
                _ when config.StartsWith("archived/gemma") => "hf-tiny/gemma",
                _ when config.StartsWith("phi") => "hf-tiny/phi3",
                _ => "hf-tiny/llama",   // llama-2, llama-3, tiny-llama, the RunPod request; llama-4 (no llama4 family here) too
            };
            if (models.TryGetValue(family, out var dir)) return dir;
            dir = Path.Combine(root, "models", family.Replace('/', '_'));
            Directory.CreateDirectory(dir);
            foreach (var file in new[] { "config.json", "model.safetensors", "generation_config.json" })
                if (File.Exists(Path.Combine(TestPaths.Fixtures, family, file)))
                    File.Copy(Path.Combine(TestPaths.Fixtures, family, file), Path.Combine(dir, file));
            WriteTokenizer(dir, family);
            return models[family] = dir;
        }

        /// <summary>Every family's special tokens, on control-byte ids the stand-in text never uses (the fixtures' vocabulary is 256 bytes).</summary>
        private static readonly string[] SpecialTokens =
        [
            "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<s>", "</s>", "[INST]", "[/INST]",
            "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>", "<pad>",
            "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",
        ];

        /// <summary>
        /// The byte tokenizer dressed as the family's: its special tokens, BOS/EOS and chat template (as the real repos'
        /// tokenizer_config.json carry them), so templates and eot_tokens resolve to single tokens as they do on the real model.
        /// </summary>
        private static void WriteTokenizer(string dir, string family)
        {
            var (template, bos, eos) = family switch
            {
                var f when f.Contains("mistral") || f.Contains("mixtral") => ("mistral_v1", "<s>", "</s>"),
                var f when f.Contains("qwen") => ("qwen_25", null, "<|im_end|>"),
                var f when f.Contains("gemma3") => ("gemma3", "<bos>", "<eos>"),
                var f when f.Contains("gemma") => ("gemma", "<bos>", "<eos>"),
                var f when f.Contains("phi") => ("phi_3", null, "<|end|>"),
                _ => ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
            };
            var ids = Enumerable.Range(1, 31).Where(b => b is not (9 or 10 or 13)).ToArray();
            var tokenizer = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "byte-tokenizer", "tokenizer.json")))!.AsObject();
            tokenizer["added_tokens"] = new JsonArray(SpecialTokens.Select((t, i) => (JsonNode)new JsonObject
            {
                ["id"] = ids[i], ["content"] = t, ["single_word"] = false, ["lstrip"] = false, ["rstrip"] = false, ["normalized"] = false, ["special"] = true,
            }).ToArray());
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), tokenizer.ToJsonString());
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "byte-tokenizer", "tokenizer_config.json")))!.AsObject();
            config["bos_token"] = bos;
            config["eos_token"] = eos;
            config["chat_template"] = SharpTune.Tokenization.BuiltInChatTemplates.Get(template);
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"), config.ToJsonString());
        }

        public string Dataset(JsonObject entry, string list)
        {
            string type = entry["type"]?.ToString() ?? "alpaca";
            string file = Path.Combine(root, "data", $"{list}-{datasets++}.jsonl");
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
            var random = new Random(datasets);
            var lines = Enumerable.Range(0, 200).Select(i => Row(type, entry, i, random).ToJsonString());
            File.WriteAllLines(file, lines);
            return file;
        }

        private static JsonObject Message(JsonObject entry, string role, string content)
        {
            var mapping = entry["message_property_mappings"] as JsonObject;
            string roleKey = mapping?["role"]?.ToString() ?? entry["message_field_role"]?.ToString() ?? "role";
            string contentKey = mapping?["content"]?.ToString() ?? entry["message_field_content"]?.ToString() ?? "content";
            return new JsonObject { [roleKey] = role, [contentKey] = content };
        }

        private static JsonNode Row(string type, JsonObject entry, int i, Random random)
        {
            string question = $"What is {i} plus {random.Next(10)}?";
            string answer = $"It is {i + 3}.";
            string wrong = "I do not know.";
            string messages = entry["field_messages"]?.ToString() ?? "messages";
            switch (type)
            {
                case "chat_template":
                    return new JsonObject { [messages] = new JsonArray(Message(entry, "user", question), Message(entry, "assistant", answer)) };
                case "chat_template.default":
                    return new JsonObject
                    {
                        [messages] = new JsonArray(Message(entry, "user", question)),
                        [entry["field_chosen"]?.ToString() ?? "chosen"] = Message(entry, "assistant", answer),
                        [entry["field_rejected"]?.ToString() ?? "rejected"] = Message(entry, "assistant", wrong),
                    };
                case "chat_template.argilla" or "chatml.argilla" or "llama3.argilla":
                    return new JsonObject
                    {
                        ["prompt"] = question,
                        ["chosen"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = question }, new JsonObject { ["role"] = "assistant", ["content"] = answer }),
                        ["rejected"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = question }, new JsonObject { ["role"] = "assistant", ["content"] = wrong }),
                    };
                case "chatml.intel" or "llama3.intel":
                    return new JsonObject { ["system"] = "Be brief.", ["question"] = question, ["chosen"] = answer, ["rejected"] = wrong };
                case "chatml.ultra" or "llama3.ultra":
                    // KTO rows (prompt, completion, label) as argilla's ultrafeedback-kto has them.
                    return new JsonObject { ["prompt"] = question, ["completion"] = i % 2 == 0 ? answer : wrong, ["label"] = i % 2 == 0 };
                case "completion" or "pretrain":
                    return new JsonObject { [entry["field"]?.ToString() ?? entry["text_column"]?.ToString() ?? "text"] = $"{question} {answer}" };
                default: // alpaca and anything shaped like it
                    return new JsonObject { ["instruction"] = question, ["input"] = i % 3 == 0 ? "Show the sum." : "", ["output"] = answer };
            }
        }
    }
}
