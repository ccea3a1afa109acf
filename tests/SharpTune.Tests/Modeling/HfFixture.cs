using System.Text.Json.Nodes;
using SharpTune.SafeTensors;

namespace SharpTune.Tests.Modeling;

/// <summary>One folder of tests/fixtures/hf-tiny or hf-tiny-new: inputs and what transformers (and PEFT) computed on them.</summary>
internal sealed class HfFixture
{
    /// <summary>The fixture sets transformers made: 4.44.2 (hf-tiny) and 4.51.3 (hf-tiny-new).</summary>
    public static readonly string[] Sets = ["hf-tiny", "hf-tiny-new"];

    public HfFixture(string name) : this("hf-tiny", name) { }

    public HfFixture(string set, string name)
    {
        Name = $"{set}/{name}";
        Dir = Path.Combine(TestPaths.Fixtures, set, name);
        Golden = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "golden.json")))!.AsObject();
        Inputs = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "input_ids.json")))!.AsObject();
    }

    /// <summary>Every fixture folder of every set, as "set/name".</summary>
    public static IEnumerable<string> All() =>
        Sets.SelectMany(set => Directory.GetDirectories(Path.Combine(TestPaths.Fixtures, set))
            .Where(d => File.Exists(Path.Combine(d, "golden.json")))
            .Select(d => $"{set}/{Path.GetFileName(d)}"))
            .OrderBy(n => n, StringComparer.Ordinal);

    public static HfFixture Parse(string setAndName)
    {
        var parts = setAndName.Split('/');
        return new HfFixture(parts[0], parts[1]);
    }

    public string Name { get; }
    public string Dir { get; }
    public JsonObject Golden { get; }
    public JsonObject Inputs { get; }

    /// <summary>A PEFT adapter fixture (base/ + adapter/ + merged/) rather than a plain model folder.</summary>
    public bool IsAdapter => Directory.Exists(Path.Combine(Dir, "adapter"));
    public string ModelDir => IsAdapter ? Path.Combine(Dir, "base") : Dir;

    public long[][] InputIds => Rows(Inputs["input_ids"]!);
    public long[][] Labels => Rows(Inputs["labels"]!);
    public long[][] AttentionMask => Rows(Inputs["attention_mask"]!);
    public long[] GreedyPrompt => Inputs["greedy_prompt"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();
    public int GreedyMaxNewTokens => Inputs["greedy_max_new_tokens"]!.GetValue<int>();
    public long[] Greedy => Golden["greedy"]!.AsArray().Select(n => n!.GetValue<long>()).ToArray();
    public double Loss => Golden["loss"]!.GetValue<double>();

    public SafeTensorsCheckpoint OpenGoldenTensors() => SafeTensorsCheckpoint.Open(Path.Combine(Dir, "golden_tensors.safetensors"));

    public static long[][] Rows(JsonNode node) =>
        node.AsArray().Select(r => r!.AsArray().Select(v => v!.GetValue<long>()).ToArray()).ToArray();

    public override string ToString() => Name;
}
