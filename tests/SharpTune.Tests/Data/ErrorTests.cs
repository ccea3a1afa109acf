using System.Text.Json.Nodes;
using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

public class ErrorTests
{
    [Fact]
    public void Missing_alpaca_field_names_file_row_and_field()
    {
        string file = WriteJsonl(
            new JsonObject { ["instruction"] = "a", ["output"] = "b" },
            new JsonObject { ["instruction"] = "c", ["input"] = "d" });
        var e = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig(file, "alpaca"), Llama3));
        Assert.Equal($"{file}:2: missing field \"output\" (alpaca rows need instruction and output, optionally input and system); found keys: instruction, input (datasets[0], type alpaca)", e.Message);
    }

    [Fact]
    public void Mistyped_field_names_the_value_found()
    {
        string file = WriteJsonl(new JsonObject { ["messages"] = "hello" });
        var e = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig(file, "chat_template"), Llama3));
        Assert.Equal($"{file}:1: field \"messages\" is the string \"hello\"; expected a list of messages (datasets[0], type chat_template)", e.Message);
    }

    [Fact]
    public void Invalid_json_line_names_the_line()
    {
        string file = Path.Combine(TestPaths.TempDir(), "bad.jsonl");
        File.WriteAllText(file, "{\"text\": \"ok\"}\n{\"text\": oops}\n");
        var e = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig(file, "completion"), Llama3));
        Assert.Equal($"{file}:2: not valid JSON at byte 10 of the line (offset 24 in the file) ('o' is an invalid start of a value) (datasets[0], type completion)", e.Message);
    }

    [Fact]
    public void Unknown_type_lists_the_supported_ones()
    {
        var e = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig(Path.Combine(Examples, "alpaca.json"), "oasst"), Llama3));
        Assert.Equal($"datasets[0].type: oasst is not supported; supported: {RowFormatter.SupportedTypes}", e.Message);
    }

    [Fact]
    public void Missing_file_names_the_path_tried()
    {
        var e = Assert.Throws<InvalidInputException>(() => Prepare(MakeConfig("no/such/file.jsonl", "alpaca"), Llama3));
        // A data-file extension means a local file: it is not looked up on the hub.
        Assert.Equal($"datasets[0].path: no/such/file.jsonl not found (tried {Path.Combine(TestPaths.RepoRoot, "no/such/file.jsonl")}); expected a data file, folder, glob or a Hugging Face dataset id (owner/name)", e.Message);
    }

    [Fact]
    public void Skip_bad_rows_counts_and_reports_the_first()
    {
        string file = WriteJsonl(
            new JsonObject { ["instruction"] = "a", ["output"] = "b" },
            new JsonObject { ["instruction"] = "c" },
            new JsonObject { ["output"] = "e" });
        var warnings = new List<string>();
        var data = Prepare(MakeConfig(file, "alpaca"), Llama3, warnings, new DataOptions { SkipBadRows = true });
        Assert.Single(data.Train);
        Assert.Equal(2, data.Stats.DroppedBad);
        Assert.Contains(warnings, w => w.StartsWith($"datasets[0] ({file}): skipped 2 malformed row(s) of 3; first: {file}:2: missing field \"output\""));
    }

    [Fact]
    public void Rows_without_trainable_tokens_are_dropped_with_a_counted_warning()
    {
        string file = WriteJsonl(
            Chat(("user", "Hi"), ("assistant", "Hello.")),
            Chat(("user", "Only a question")),
            Chat(("user", "Another"), ("assistant", "Answer.")));
        var warnings = new List<string>();
        var data = Prepare(MakeConfig(file, "chat_template"), Llama3, warnings);
        Assert.Equal(2, data.Train.Count);
        Assert.Equal(1, data.Stats.DroppedNoTrainableTokens);
        // This llama3 template always ends with the assistant header (add_generation_prompt or not), shown cut at 120 characters.
        Assert.Equal($"datasets[0] ({file}): 1 of 3 row(s) have no trainable tokens (every label is -100) and were dropped; " +
                     $"first: {file}:2: \"<|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n\\nOnly a question<|eot_id|><|start_header_id|>assistant<|end_he…\"",
                     Assert.Single(warnings));
    }

    [Fact]
    public void A_dataset_with_no_trainable_tokens_at_all_is_an_error_explaining_why()
    {
        string file = WriteJsonl(Chat(("human", "Hi"), ("bot", "Hello.")), Chat(("human", "Yo"), ("bot", "Yo.")));
        // roles: maps both to names no template role trains.
        var config = MakeConfig(file, "chat_template") with
        {
            Datasets = [new DatasetConfig { Path = file, Type = "chat_template", RolesToTrain = ["gpt"] }],
        };
        var e = Assert.Throws<InvalidInputException>(() => Prepare(config, Llama3));
        Assert.StartsWith($"datasets[0] ({file}): 2 of 2 row(s) have no trainable tokens (every label is -100) and were dropped; first: {file}:1:", e.Message);
        Assert.EndsWith("the whole dataset has nothing to learn from: with train_on_inputs: false only the turns of roles_to_train (gpt) are trained — " +
                        "check the message roles, roles:, field_messages and message_property_mappings", e.Message);
    }

    [Fact]
    public void Too_long_rows_are_dropped_or_truncated_and_counted()
    {
        string file = Path.Combine(Examples, "alpaca.json");
        var all = Prepare(MakeConfig(file, "alpaca", sequenceLen: 4096), Llama3).Train;
        int expectedLong = all.Count(r => r.InputIds.Length > 96);
        Assert.InRange(expectedLong, 10, 110);
        var warnings = new List<string>();
        var dropped = Prepare(MakeConfig(file, "alpaca", sequenceLen: 96), Llama3, warnings);
        Assert.Equal(expectedLong, dropped.Stats.DroppedTooLong);
        Assert.Equal(120 - expectedLong, dropped.Train.Count);
        Assert.Contains(warnings, w => w.StartsWith($"datasets[0] ({file}): dropped {expectedLong} of 120 row(s) longer than sequence_len 96 (longest {all.Max(r => r.InputIds.Length)} tokens)"));

        var truncated = Prepare(MakeConfig(file, "alpaca", sequenceLen: 96) with { ExcessLengthStrategy = ExcessLengthStrategy.Truncate }, Llama3);
        Assert.All(truncated.Train, r => Assert.True(r.InputIds.Length <= 96));
        // A row whose answer lies beyond the cut has nothing left to train and is dropped, not kept empty;
        // Truncated counts the cut rows that were kept.
        Assert.True(truncated.Stats.DroppedNoTrainableTokens > 0);
        Assert.Equal(expectedLong, truncated.Stats.Truncated + truncated.Stats.DroppedNoTrainableTokens);
        Assert.Equal(120, truncated.Train.Count + truncated.Stats.DroppedNoTrainableTokens);
        Assert.Equal(0, truncated.Stats.DroppedTooLong);
    }
}
