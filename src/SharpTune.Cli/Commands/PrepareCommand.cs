using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Hub;
using SharpTune.Tokenization;
using SharpTune.Files;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune prepare CONFIG [--set k=v] [--export-jsonl FILE]`: tokenize, label and pack the datasets, print the counts.</summary>
public static class PrepareCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Argument<string>("config") { Description = "Training config (.yaml, .json, or a JSON job request)." };
        var set = new Option<string[]>("--set") { Description = "Override a config key: --set sequence_len=1024 (repeatable)." };
        var export = new Option<string?>("--export-jsonl") { Description = "Write each training row (packed when sample_packing) as JSON: input_ids, labels, position_ids, segment_ids, text." };
        var skipBad = SkipBadRowsOption.Create();
        var command = new Command("prepare", "Tokenize, label and pack the datasets of a config (and fill the prepared-dataset cache) without training.");
        command.Arguments.Add(config);
        command.Options.Add(set);
        command.Options.Add(export);
        command.Options.Add(skipBad);
        console.Bind(command, parse =>
        {
            string path = parse.GetValue(config)!;
            void Warn(string w) => console.Error.WriteLine($"warning: {w}");
            var cfg = ConfigLoader.Load(path, parse.GetValue(set) ?? [], Warn);
            string configDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            string tokenizerRef = cfg.TokenizerConfig ?? cfg.BaseModel ?? throw new InvalidInputException($"{path}: base_model: missing; the tokenizer comes from it");
            var tokenizer = HfTokenizer.FromDirectory(ModelLocator.Resolve(tokenizerRef, cfg.TokenizerConfig is null ? cfg.RevisionOfModel : null, ModelFiles.Metadata,
                new HubLookup { Settings = HubSettings.FromEnvironment(cfg.HubToken), Progress = new TextDownloadProgress(console.Out), Warn = w => console.Error.WriteLine($"warning: {w}") }));
            if (cfg.PretrainingDataset.Count > 0)
            {
                // A stream is tokenized as training reads it: there is nothing to cache; reading its first row checks the source.
                using var stream = new PretrainStream(cfg, tokenizer, configDir);
                stream.Row(0);
                console.Out.WriteLine($"pretraining_dataset is streamed during training (no cache); first row of {cfg.SequenceLen} tokens read " +
                                      $"after {stream.Cursor.SourceRowsRead} document(s)");
                return 0;
            }
            var clock = Stopwatch.StartNew();
            double lastReport = 0;
            void Progress(long rows)
            {
                if (clock.Elapsed.TotalSeconds - lastReport < 5) return;
                lastReport = clock.Elapsed.TotalSeconds;
                console.Error.WriteLine($"tokenizing: {rows} rows, {(rows / lastReport).ToString("F0", CultureInfo.InvariantCulture)} rows/s");
            }
            var data = DataPipeline.Prepare(cfg, tokenizer, configDir, Warn,
                new DataOptions { SkipBadRows = parse.GetValue(skipBad), Log = m => console.Out.WriteLine(m), Progress = Progress });
            double seconds = clock.Elapsed.TotalSeconds;
            var s = data.Stats;
            var inv = CultureInfo.InvariantCulture;
            console.Out.WriteLine($"rows read        {s.RowsRead}{(s.FromCache ? " (from cache)" : $" in {seconds.ToString("F2", inv)} s, {(s.RowsRead / Math.Max(seconds, 1e-9)).ToString("F0", inv)} rows/s")}");
            console.Out.WriteLine($"rows kept        {s.RowsKept} (train {s.TrainRows}, eval {s.EvalRows})");
            console.Out.WriteLine($"dropped          too long {s.DroppedTooLong}, no trainable tokens {s.DroppedNoTrainableTokens}, malformed {s.DroppedBad}, duplicate {s.DroppedDuplicate}; truncated {s.Truncated}");
            console.Out.WriteLine($"tokens           {s.Tokens} (trainable {s.TrainableTokens}, {(s.Tokens == 0 ? 0 : 100.0 * s.TrainableTokens / s.Tokens).ToString("F1", inv)}%)");
            BatchPlan? plan = null;
            if (data.Train.Count > 0)
            {
                plan = new BatchPlan(data.Train, cfg.MicroBatchSize, cfg.SequenceLen, cfg.SamplePacking, cfg.PadToSequenceLen,
                    tokenizer.PadTokenId ?? tokenizer.EosTokenId ?? 0, cfg.Seed);
                console.Out.WriteLine($"training rows    {plan.RowsPerEpoch}{(cfg.SamplePacking ? " packed" : "")} of sequence_len {cfg.SequenceLen}, " +
                                      $"{plan.BatchesPerEpoch} micro-batches per epoch");
                console.Out.WriteLine($"packing          efficiency {(100 * plan.PackingEfficiency).ToString("F1", inv)}% (non-pad tokens / rows × sequence_len)");
            }
            else if (data.UnpairedTrain.Count > 0)
                console.Out.WriteLine($"kto examples     train {data.UnpairedTrain.Count} ({data.UnpairedTrain.Count(e => e.Desirable)} desirable), eval {data.UnpairedEval.Count}");
            else console.Out.WriteLine($"preference pairs train {data.PreferenceTrain.Count}, eval {data.PreferenceEval.Count}");
            console.Out.WriteLine($"cache key        {s.CacheKey}");
            if (parse.GetValue(export) is { } exportPath) Export(exportPath, data, plan, tokenizer, console);
            return 0;
        });
        return command;
    }

    private static void Export(string path, PreparedData data, BatchPlan? plan, HfTokenizer tokenizer, CliConsole console)
    {
        string full = Path.GetFullPath(path);
        int written = 0;
        AtomicFile.WriteLines(full, writer =>
        {
            if (plan != null)
                for (int unit = 0; unit < plan.RowsPerEpoch; unit++, written++)
                {
                    var row = plan.Row(unit);
                    writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["input_ids"] = row.InputIds,
                        ["labels"] = row.Labels,
                        ["position_ids"] = row.PositionIds,
                        ["segment_ids"] = row.SegmentIds,
                        ["text"] = tokenizer.Decode(row.InputIds),
                    }));
                }
            else if (data.UnpairedTrain.Count > 0)
                foreach (var example in data.UnpairedTrain)
                {
                    writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["prompt_ids"] = example.PromptIds, ["completion_ids"] = example.CompletionIds, ["label"] = example.Desirable,
                        ["prompt"] = tokenizer.Decode(example.PromptIds), ["completion"] = tokenizer.Decode(example.CompletionIds),
                    }));
                    written++;
                }
            else
                foreach (var pair in data.PreferenceTrain)
                {
                    writer.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                    {
                        ["prompt_ids"] = pair.PromptIds, ["chosen_ids"] = pair.ChosenIds, ["rejected_ids"] = pair.RejectedIds,
                        ["prompt"] = tokenizer.Decode(pair.PromptIds), ["chosen"] = tokenizer.Decode(pair.ChosenIds), ["rejected"] = tokenizer.Decode(pair.RejectedIds),
                    }));
                    written++;
                }
        });
        console.Out.WriteLine($"exported {written} rows to {full}");
    }
}
