using System.Text.Json.Nodes;
using Parquet.Serialization;
using SharpTune.Config;
using SharpTune.Data;
using static SharpTune.Tests.Data.DataTestKit;

namespace SharpTune.Tests.Data;

public class SourceTests
{
    private sealed class ParquetMessage
    {
        public string Role { get; set; } = "";
        public string Content { get; set; } = "";
    }

    private sealed class ParquetChatRow
    {
        public int Id { get; set; }
        public List<ParquetMessage> Messages { get; set; } = [];
    }

    [Fact]
    public async Task Parquet_rows_with_nested_message_lists_read_as_chat()
    {
        string dir = TestPaths.TempDir();
        string file = Path.Combine(dir, "chat.parquet");
        var rows = Enumerable.Range(0, 5).Select(i => new ParquetChatRow
        {
            Id = i,
            Messages = [new() { Role = "user", Content = $"Count to {i}" }, new() { Role = "assistant", Content = $"Answer {i}." }],
        }).ToList();
        await ParquetSerializer.SerializeAsync(rows, file);
        var read = DatasetSources.ReadRows(file, SourceFileKind.Parquet).ToList();
        Assert.Equal(5, read.Count);
        Assert.Equal(3, read[3].Value!["Id"]!.GetValue<double>());
        Assert.Equal($"{file}:4", read[3].Location);
        var config = MakeConfig(file, "chat_template") with
        {
            Datasets = [new DatasetConfig { Path = file, Type = "chat_template", FieldMessages = "Messages",
                MessagePropertyMappings = new Dictionary<string, string> { ["role"] = "Role", ["content"] = "Content" } }],
        };
        var data = Prepare(config, Llama3);
        Assert.Equal(5, data.Train.Count);
        Assert.Equal("Answer 2.<|eot_id|>", Llama3.Decode(Assert.Single(LabelledRuns(data.Train[2]))));
    }

    [Fact]
    public void Csv_and_tsv_rows_become_string_fields()
    {
        string dir = TestPaths.TempDir();
        File.WriteAllText(Path.Combine(dir, "a.csv"), "instruction,input,output\n\"Say \"\"hi\"\", please\",,Hi.\nAdd,\"1, 2\",3\n");
        File.WriteAllText(Path.Combine(dir, "b.tsv"), "instruction\tinput\toutput\nSay yo\t\tYo.\n");
        var csv = DatasetSources.ReadRows(Path.Combine(dir, "a.csv"), SourceFileKind.Csv).ToList();
        Assert.Equal(2, csv.Count);
        Assert.Equal("Say \"hi\", please", csv[0].Value!["instruction"]!.GetValue<string>());
        Assert.Equal("1, 2", csv[1].Value!["input"]!.GetValue<string>());
        Assert.Equal(3, csv[1].Row);
        var tsv = DatasetSources.ReadRows(Path.Combine(dir, "b.tsv"), SourceFileKind.Tsv).ToList();
        Assert.Equal("Yo.", Assert.Single(tsv).Value!["output"]!.GetValue<string>());
        var data = Prepare(MakeConfig(dir, "alpaca"), Llama3);
        Assert.Equal(3, data.Stats.RowsRead);
    }

    [Fact]
    public void Json_array_data_object_and_json_lines_in_a_json_file()
    {
        string dir = TestPaths.TempDir();
        File.WriteAllText(Path.Combine(dir, "array.json"), """[{"text": "a"}, {"text": "b"}]""");
        File.WriteAllText(Path.Combine(dir, "wrapped.json"), """{"version": 1, "data": [{"text": "c"}, {"text": "d"}, {"text": "e"}]}""");
        File.WriteAllText(Path.Combine(dir, "lines.json"), "{\"text\": \"f\"}\n{\"text\": \"g\"}\n");
        Assert.Equal(["a", "b"], DatasetSources.ReadRows(Path.Combine(dir, "array.json"), SourceFileKind.Json).Select(r => r.Value!["text"]!.GetValue<string>()));
        Assert.Equal(["c", "d", "e"], DatasetSources.ReadRows(Path.Combine(dir, "wrapped.json"), SourceFileKind.Json).Select(r => r.Value!["text"]!.GetValue<string>()));
        Assert.Equal(["f", "g"], DatasetSources.ReadRows(Path.Combine(dir, "lines.json"), SourceFileKind.Json).Select(r => r.Value!["text"]!.GetValue<string>()));
    }

    [Fact]
    public void Folder_split_glob_and_data_files_select_files()
    {
        string dir = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "data"));
        File.WriteAllText(Path.Combine(dir, "data", "train-00000-of-00002.jsonl"), "{\"text\": \"t1\"}\n");
        File.WriteAllText(Path.Combine(dir, "data", "train-00001-of-00002.jsonl"), "{\"text\": \"t2\"}\n{\"text\": \"t3\"}\n");
        File.WriteAllText(Path.Combine(dir, "data", "test-00000-of-00001.jsonl"), "{\"text\": \"x\"}\n");
        var train = DatasetSources.ResolveFiles(new DatasetConfig { Path = dir, Type = "completion" }, "/", "datasets[0]");
        Assert.Equal(["train-00000-of-00002.jsonl", "train-00001-of-00002.jsonl"], train.Select(Path.GetFileName));
        var test = DatasetSources.ResolveFiles(new DatasetConfig { Path = dir, Type = "completion", Split = "test" }, "/", "datasets[0]");
        Assert.Equal("test-00000-of-00001.jsonl", Path.GetFileName(Assert.Single(test)));
        var glob = DatasetSources.ResolveFiles(new DatasetConfig { Path = Path.Combine(dir, "**", "*-00001*.jsonl") }, "/", "datasets[0]");
        Assert.Equal(["test-00000-of-00001.jsonl", "train-00001-of-00002.jsonl"], glob.Select(Path.GetFileName).Order());
        var files = DatasetSources.ResolveFiles(new DatasetConfig { Path = dir, DataFiles = ["data/test-00000-of-00001.jsonl"] }, "/", "datasets[0]");
        Assert.Single(files);
        var error = Assert.Throws<InvalidInputException>(() =>
            DatasetSources.ResolveFiles(new DatasetConfig { Path = dir, Split = "validation" }, "/", "datasets[0]"));
        Assert.Equal($"datasets[0].split: validation not in {dir}; splits found: test, train", error.Message);
    }

    [Fact]
    public void Hub_cache_dataset_ids_resolve_to_the_snapshot()
    {
        string cache = TestPaths.TempDir();
        string snapshot = Path.Combine(cache, "datasets--acme--tiny", "snapshots", "abc123", "data");
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(Path.Combine(cache, "datasets--acme--tiny", "refs"));
        File.WriteAllText(Path.Combine(cache, "datasets--acme--tiny", "refs", "main"), "abc123");
        File.WriteAllText(Path.Combine(snapshot, "train-00000-of-00001.jsonl"), "{\"text\": \"hello\"}\n");
        using (new SharpTune.Tests.Hub.HubEnvironment(endpoint: null, cache: cache))
        {
            var files = DatasetSources.ResolveFiles(new DatasetConfig { Path = "acme/tiny" }, TestPaths.TempDir(), "datasets[0]");
            Assert.Equal(Path.Combine(snapshot, "train-00000-of-00001.jsonl"), Assert.Single(files));
        }
    }

    [Fact]
    public void Jsonl_is_streamed_row_by_row()
    {
        // A 40 MB file is read with bounded memory: the enumerator holds one line at a time.
        string file = Path.Combine(TestPaths.TempDir(), "big.jsonl");
        using (var w = new StreamWriter(file))
            for (int i = 0; i < 200_000; i++) w.WriteLine($"{{\"text\": \"row {i} {new string('x', 180)}\"}}");
        GC.Collect();
        long before = GC.GetTotalMemory(true);
        long rows = 0, peak = 0;
        foreach (var row in DatasetSources.ReadRows(file, SourceFileKind.Jsonl))
        {
            rows++;
            // Collected first: what is measured is what the reader keeps, not garbage the GC has not reached yet.
            if (rows % 50_000 == 0) peak = Math.Max(peak, GC.GetTotalMemory(true) - before);
        }
        Assert.Equal(200_000, rows);
        Assert.True(peak < new FileInfo(file).Length / 2, $"memory grew by {peak} bytes while reading a {new FileInfo(file).Length}-byte file");
    }
}

public class MixingTests
{
    [Fact]
    public void Weights_subsample_or_repeat_and_dedup_drops_exact_copies()
    {
        string alpaca = Path.Combine(Examples, "alpaca.json"), chat = Path.Combine(Examples, "chat.jsonl");
        var config = MakeConfig(alpaca, "alpaca") with
        {
            Datasets = [new DatasetConfig { Path = alpaca, Type = "alpaca", Weight = 0.25 },
                        new DatasetConfig { Path = chat, Type = "chat_template", Weight = 2.5 }],
        };
        var data = Prepare(config, Llama3);
        Assert.Equal(30 + 150, data.Train.Count);
        Assert.Equal(180, data.Stats.RowsRead);
        Assert.Equal(data.Train.Select(r => r.InputIds.Length), Prepare(config, Llama3, options: new DataOptions { UseCache = false }).Train.Select(r => r.InputIds.Length));

        string dup = WriteJsonl(Chat(("user", "Hi"), ("assistant", "Yo.")), Chat(("user", "Hi"), ("assistant", "Yo.")), Chat(("user", "Hi"), ("assistant", "Hey.")));
        var deduped = Prepare(MakeConfig(dup, "chat_template"), Llama3, options: new DataOptions { Deduplicate = true });
        Assert.Equal(2, deduped.Train.Count);
        Assert.Equal(1, deduped.Stats.DroppedDuplicate);
        // The axolotl key does the same from a config.
        var byKey = Prepare(MakeConfig(dup, "chat_template") with { DatasetExactDeduplication = true }, Llama3);
        Assert.Equal(1, byKey.Stats.DroppedDuplicate);
        Assert.Equal(3, Prepare(MakeConfig(dup, "chat_template"), Llama3).Train.Count);
    }

    [Fact]
    public void Dataset_name_selects_the_configuration_subfolder()
    {
        string dir = TestPaths.TempDir();
        Directory.CreateDirectory(Path.Combine(dir, "en"));
        Directory.CreateDirectory(Path.Combine(dir, "fr"));
        File.WriteAllText(Path.Combine(dir, "en", "train.jsonl"), "{\"text\": \"hello\"}\n");
        File.WriteAllText(Path.Combine(dir, "fr", "train.jsonl"), "{\"text\": \"bonjour\"}\n");
        var files = DatasetSources.ResolveFiles(new DatasetConfig { Path = dir, Name = "fr" }, "/", "datasets[0]");
        Assert.Equal(Path.Combine(dir, "fr", "train.jsonl"), Assert.Single(files));
    }
}
