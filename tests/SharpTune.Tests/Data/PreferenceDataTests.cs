using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

/// <summary>Preference and KTO rows through the data pipeline: rendering, unpairing, bad rows named by file:row, cache.</summary>
public class PreferenceDataTests
{
    [Fact]
    public void Kto_rows_render_prompt_and_completion_with_their_label()
    {
        string file = WriteJsonl(
            new JsonObject { ["prompt"] = "What is 2 plus 2?", ["completion"] = "It is 4.", ["label"] = true },
            new JsonObject { ["prompt"] = "What is 2 plus 3?", ["completion"] = "It is 7.", ["label"] = false });
        var data = Prepare(MakeConfig(file, "kto") with { Rl = RlType.Kto }, Llama3);
        Assert.Empty(data.PreferenceTrain);
        Assert.Equal(2, data.UnpairedTrain.Count);
        Assert.Equal("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2 plus 2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            Llama3.Decode(data.UnpairedTrain[0].PromptIds));
        Assert.Equal("It is 4.<|eot_id|>", Llama3.Decode(data.UnpairedTrain[0].CompletionIds));
        Assert.True(data.UnpairedTrain[0].Desirable);
        Assert.Equal("It is 7.<|eot_id|>", Llama3.Decode(data.UnpairedTrain[1].CompletionIds));
        Assert.False(data.UnpairedTrain[1].Desirable);
        Assert.Equal(2, data.Stats.TrainRows);
    }

    [Fact]
    public void Kto_unpairs_paired_rows_and_keeps_both_halves_on_one_side_of_the_split()
    {
        var rows = Enumerable.Range(0, 20).Select(i => (JsonNode)new JsonObject
            { ["prompt"] = $"Shout: w{i}", ["chosen"] = $"W{i}!", ["rejected"] = $"w{i}." }).ToArray();
        var config = MakeConfig(WriteJsonl(rows), "chat_template.default") with { Rl = RlType.Kto, ValSetSize = 0.25 };
        var data = Prepare(config, Llama3);
        Assert.Equal(30, data.UnpairedTrain.Count);
        Assert.Equal(10, data.UnpairedEval.Count);
        Assert.Equal(15, data.UnpairedTrain.Count(e => e.Desirable));
        var trainPrompts = data.UnpairedTrain.Select(e => Llama3.Decode(e.PromptIds)).ToHashSet();
        Assert.DoesNotContain(data.UnpairedEval, e => trainPrompts.Contains(Llama3.Decode(e.PromptIds)));
        var first = data.UnpairedTrain[0];
        Assert.True(first.Desirable);
        Assert.Equal(first.PromptIds, data.UnpairedTrain[1].PromptIds);
        Assert.False(data.UnpairedTrain[1].Desirable);
        Assert.Equal(Llama3.Decode(first.CompletionIds).ToLowerInvariant().Replace("!", "."), Llama3.Decode(data.UnpairedTrain[1].CompletionIds));
    }

    [Fact]
    public void Kto_label_must_be_a_boolean_and_is_named_with_file_and_row()
    {
        string file = WriteJsonl(
            new JsonObject { ["prompt"] = "a", ["completion"] = "b", ["label"] = true },
            new JsonObject { ["prompt"] = "c", ["completion"] = "d", ["label"] = "yes" });
        var e = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig(file, "kto") with { Rl = RlType.Kto }, Llama3));
        Assert.Equal($"{file}:2: field \"label\" is the string \"yes\"; expected true (desirable) or false (undesirable) (datasets[0], type kto)", e.Message);
        string missing = WriteJsonl(new JsonObject { ["prompt"] = "a", ["completion"] = "b" });
        e = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig(missing, "kto") with { Rl = RlType.Kto }, Llama3));
        Assert.Equal($"{missing}:1: missing field \"label\" (KTO rows need prompt, completion and label (true = desirable), or chosen and rejected); found keys: prompt, completion (datasets[0], type kto)", e.Message);
    }

    [Fact]
    public void Identical_chosen_and_rejected_is_an_error_naming_the_row_or_skipped_with_a_warning()
    {
        string file = WriteJsonl(
            new JsonObject { ["prompt"] = "a?", ["chosen"] = "yes", ["rejected"] = "no" },
            new JsonObject { ["prompt"] = "b?", ["chosen"] = "same", ["rejected"] = "same" },
            new JsonObject { ["prompt"] = "c?", ["chosen"] = "yes" });
        var config = MakeConfig(file, "preference") with { Rl = RlType.Dpo };
        var e = Assert.Throws<InvalidInputException>(() => Prepare(config, Llama3));
        Assert.Equal($"{file}:2: \"chosen\" and \"rejected\" are the same answer (\"same\"); a preference pair needs two different answers (datasets[0], type preference)", e.Message);

        var warnings = new List<string>();
        var data = Prepare(config, Llama3, warnings, new DataOptions { SkipBadRows = true });
        Assert.Single(data.PreferenceTrain);
        Assert.Equal(2, data.Stats.DroppedBad);
        Assert.Equal($"datasets[0] ({file}): skipped 2 malformed row(s) of 3; first: {file}:2: \"chosen\" and \"rejected\" are the same answer (\"same\"); a preference pair needs two different answers",
            Assert.Single(warnings));
    }

    [Fact]
    public void Unpaired_examples_round_trip_through_the_cache()
    {
        string cache = TestPaths.TempDir();
        var config = MakeConfig(Path.Combine(Examples, "case-preference.jsonl"), "chat_template.default", "qwen3", cache: cache) with { Rl = RlType.Kto, ValSetSize = 0.1 };
        var first = Prepare(config, Qwen3);
        var second = Prepare(config, Qwen3);
        Assert.False(first.Stats.FromCache);
        Assert.True(second.Stats.FromCache);
        Assert.Equal(1080, second.UnpairedTrain.Count);
        Assert.Equal(120, second.UnpairedEval.Count);
        for (int i = 0; i < 40; i++)
        {
            Assert.Equal(first.UnpairedTrain[i].PromptIds, second.UnpairedTrain[i].PromptIds);
            Assert.Equal(first.UnpairedTrain[i].CompletionIds, second.UnpairedTrain[i].CompletionIds);
            Assert.Equal(first.UnpairedTrain[i].Desirable, second.UnpairedTrain[i].Desirable);
        }
        Assert.Equal(first.UnpairedEval.Select(e => e.Desirable), second.UnpairedEval.Select(e => e.Desirable));
    }
}
