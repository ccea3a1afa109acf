using System.Text.Json.Nodes;
using SharpTune.SafeTensors;

namespace SharpTune.Tests.Modeling;

/// <summary>One folder of tests/fixtures/hf-tiny: inputs and what transformers computed on them.</summary>
internal sealed class HfFixture
{
    public HfFixture(string name)
    {
        Dir = Path.Combine(TestPaths.Fixtures, "hf-tiny", name);
        Golden = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "golden.json")))!.AsObject();
        Inputs = JsonNode.Parse(File.ReadAllText(Path.Combine(Dir, "input_ids.json")))!.AsObject();
    }

    public string Dir { get; }
    public JsonObject Golden { get; }
    public JsonObject Inputs { get; }

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
}
