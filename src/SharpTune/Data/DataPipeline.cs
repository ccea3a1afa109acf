using System.Text.Json;
using SharpTune.Config;
using SharpTune.Hub;
using SharpTune.Tokenization;

namespace SharpTune.Data;

/// <summary>Settings of data preparation that are not (yet) config keys.</summary>
public sealed record DataOptions
{
    /// <summary>Skip malformed rows (counted, first one reported) instead of stopping with an error naming file:row.</summary>
    public bool SkipBadRows { get; init; }
    /// <summary>Drop rows whose tokenized content equals an earlier row's, across all datasets (dataset_exact_deduplication).</summary>
    public bool Deduplicate { get; init; }
    /// <summary>Use and write the prepared-dataset cache.</summary>
    public bool UseCache { get; init; } = true;
    /// <summary>Informational messages (cache hit/miss); null = silent.</summary>
    public Action<string>? Log { get; init; }
    /// <summary>Called after each chunk of rows is tokenized with the rows read so far (all datasets); null = silent.</summary>
    public Action<long>? Progress { get; init; }
}

/// <summary>
/// `datasets:` → tokenized, labelled, length-checked rows split into train and eval, cached under dataset_prepared_path.
/// Rows are read as a stream and tokenized in parallel chunks; the output order is the input order (then a seeded shuffle).
/// </summary>
public static class DataPipeline
{
    private const int ChunkRows = 2048;
    private const int CacheFormatVersion = 1;

    public static PreparedData Prepare(TrainConfig config, HfTokenizer tokenizer, string configDir, Action<string> warn) =>
        Prepare(config, tokenizer, configDir, warn, new DataOptions());

    public static PreparedData Prepare(TrainConfig config, HfTokenizer tokenizer, string configDir, Action<string> warn, DataOptions options)
    {
        if (config.Datasets.Count == 0) throw new InvalidInputException("datasets: empty; expected at least one dataset (path and type)");
        if (config.DatasetExactDeduplication) options = options with { Deduplicate = true };
        bool preference = config.Rl != null;
        var hub = new HubLookup { Settings = HubSettings.FromEnvironment(config.HubToken), Warn = warn, Progress = options.Log is { } log ? new TextDownloadProgress(new LogWriter(log)) : null };
        var trainFiles = config.Datasets.Select((d, i) => DatasetSources.ResolveParts(d, configDir, $"datasets[{i}]", hub)).ToList();
        var testFiles = config.TestDatasets.Select((d, i) => DatasetSources.ResolveParts(d, configDir, $"test_datasets[{i}]", hub)).ToList();

        string cacheRoot = config.DatasetPreparedPath ?? Path.Combine(config.OutputDir, "prepared");
        if (!Path.IsPathRooted(cacheRoot)) cacheRoot = Path.GetFullPath(Path.Combine(configDir, cacheRoot));
        string key = PreparedCache.Key(CacheSettings(config, tokenizer, options), trainFiles.Concat(testFiles).SelectMany(parts => parts.SelectMany(p => p.Files)));
        if (options.UseCache && PreparedCache.TryLoad(cacheRoot, key) is { } cached)
        {
            options.Log?.Invoke($"loaded prepared dataset from {Path.Combine(cacheRoot, key)} (no tokenizing)");
            return cached;
        }

        var totals = new Counters();
        // One deduplicator over the datasets in order is deduplication of the merged data (before weights repeat rows on purpose).
        var dedup = options.Deduplicate ? new ExactDeduplicator() : null;
        var trainSets = config.Datasets.Select((d, i) =>
            ApplyWeight(Tally(Deduplicate(Process(d, trainFiles[i], $"datasets[{i}]", config, tokenizer, preference, options, warn, totals), dedup), totals),
                d.Weight, config.Seed + i)).ToList();
        var trainRows = trainSets.SelectMany(s => s.Rows).ToList();
        var trainPairs = trainSets.SelectMany(s => s.Pairs).ToList();
        var trainUnpaired = trainSets.SelectMany(s => s.Unpaired).ToList();
        var trainPrompts = trainSets.SelectMany(s => s.Prompts).ToList();
        if (config.ShuffleMergedDatasets && config.Datasets.Count > 1)
        {
            trainPrompts = Shuffle(trainPrompts, config.Seed);
            trainRows = Shuffle(trainRows, config.Seed);
            trainPairs = Shuffle(trainPairs, config.Seed);
            trainUnpaired = Shuffle(trainUnpaired, config.Seed);
        }
        List<TokenizedExample> evalRows;
        List<PreferenceExample> evalPairs;
        List<UnpairedExample[]> evalUnpaired;
        List<PromptExample> evalPrompts;
        if (config.TestDatasets.Count > 0)
        {
            var testSets = config.TestDatasets.Select((d, i) =>
                Tally(Deduplicate(Process(d, testFiles[i], $"test_datasets[{i}]", config, tokenizer, preference, options, warn, totals), dedup), totals)).ToList();
            evalRows = testSets.SelectMany(s => s.Rows).ToList();
            evalPairs = testSets.SelectMany(s => s.Pairs).ToList();
            evalUnpaired = testSets.SelectMany(s => s.Unpaired).ToList();
            evalPrompts = testSets.SelectMany(s => s.Prompts).ToList();
        }
        else
        {
            (trainRows, evalRows) = Split(trainRows, config.ValSetSize, config.Seed);
            (trainPairs, evalPairs) = Split(trainPairs, config.ValSetSize, config.Seed);
            // Split by source row, so the two halves of an unpaired preference pair stay on the same side.
            (trainUnpaired, evalUnpaired) = Split(trainUnpaired, config.ValSetSize, config.Seed);
            (trainPrompts, evalPrompts) = Split(trainPrompts, config.ValSetSize, config.Seed);
        }
        if (dedup is { Dropped: > 0 })
            warn($"dataset_exact_deduplication: dropped {dedup.Dropped} row(s) equal to an earlier row (all datasets{(config.TestDatasets.Count > 0 ? " and test_datasets" : "")} together)");
        totals.Duplicate = dedup?.Dropped ?? 0;
        bool unpaired = config.Rl == RlType.Kto;
        bool prompts = config.Rl == RlType.Grpo;
        int Count(List<TokenizedExample> rows, List<PreferenceExample> pairs, List<UnpairedExample[]> groups, List<PromptExample> promptRows) =>
            prompts ? promptRows.Count : unpaired ? groups.Sum(g => g.Length) : preference ? pairs.Count : rows.Count;
        int trainCount = Count(trainRows, trainPairs, trainUnpaired, trainPrompts), evalCount = Count(evalRows, evalPairs, evalUnpaired, evalPrompts);
        if (trainCount == 0)
            throw new InvalidInputException($"datasets: no training rows left after the validation split (val_set_size {config.ValSetSize} of {trainCount + evalCount} rows)");

        var stats = totals.ToStats() with
        {
            TrainRows = trainCount,
            EvalRows = evalCount,
            CacheKey = key,
        };
        var prepared = new PreparedData(trainRows, evalRows, trainPairs, evalPairs, stats)
        {
            UnpairedTrain = trainUnpaired.SelectMany(g => g).ToList(),
            UnpairedEval = evalUnpaired.SelectMany(g => g).ToList(),
            PromptTrain = trainPrompts,
            PromptEval = evalPrompts,
        };
        if (options.UseCache)
        {
            PreparedCache.Save(cacheRoot, key, prepared);
            options.Log?.Invoke($"tokenized {stats.RowsRead} rows; saved to {Path.Combine(cacheRoot, key)}");
        }
        return prepared;
    }

    /// <summary>Everything besides the data files that changes the tokenized rows.</summary>
    private static object CacheSettings(TrainConfig c, HfTokenizer tokenizer, DataOptions options)
    {
        var tokenizerFiles = new List<string>();
        string? tokenizerRef = c.TokenizerConfig ?? c.BaseModel;
        if (tokenizerRef != null)
        {
            string? dir = Directory.Exists(tokenizerRef) ? tokenizerRef : TryResolve(tokenizerRef);
            if (dir != null)
                foreach (var name in new[] { "tokenizer.json", "tokenizer.json.gz", "tokenizer_config.json", "tokenizer_config.json.gz", "special_tokens_map.json", "chat_template.jinja", "tokenizer.model" })
                    if (File.Exists(Path.Combine(dir, name))) tokenizerFiles.Add(name + ":" + PreparedCache.ContentHash(Path.Combine(dir, name)));
        }
        return new
        {
            Version = CacheFormatVersion,
            Datasets = c.Datasets,
            TestDatasets = c.TestDatasets,
            c.SequenceLen,
            ExcessLength = c.ExcessLengthStrategy.ToString(),
            c.SamplePacking,
            c.TrainOnInputs,
            c.ValSetSize,
            c.Seed,
            c.ShuffleMergedDatasets,
            c.ChatTemplate,
            c.ChatTemplateJinja,
            Rl = c.Rl?.ToString(),
            options.SkipBadRows,
            options.Deduplicate,
            TokenizerFiles = tokenizerFiles,
            Tokenizer = new { tokenizer.VocabSize, tokenizer.BosTokenId, tokenizer.EosTokenId, tokenizer.PadTokenId, tokenizer.ChatTemplate },
        };
    }

    private static string? TryResolve(string reference)
    {
        // Only the cache: the tokenizer was fetched (when it is a repo) before the data is prepared.
        try { return ModelLocator.Resolve(reference, null, ModelFiles.Metadata, new HubLookup { Settings = HubSettings.FromEnvironment() with { Offline = true } }); }
        catch (InvalidInputException) { return null; }
    }

    private sealed class Counters
    {
        public long Read, Kept, TooLong, Truncated, NoTrainable, Bad, Duplicate, Tokens, Trainable;
        public DataStats ToStats() => new()
        {
            RowsRead = Read, RowsKept = Kept, DroppedTooLong = TooLong, Truncated = Truncated, DroppedNoTrainableTokens = NoTrainable,
            DroppedBad = Bad, DroppedDuplicate = Duplicate, Tokens = Tokens, TrainableTokens = Trainable,
        };
    }

    /// <summary>A dataset's kept rows; unpaired examples are grouped by source row (a paired row gives two).</summary>
    private sealed record DatasetRows(List<TokenizedExample> Rows, List<PreferenceExample> Pairs, List<UnpairedExample[]> Unpaired, List<PromptExample> Prompts);

    private enum Outcome { Kept, TooLong, NoTrainable, Bad }

    private sealed record RowResult(Outcome Outcome, TokenizedExample? Example, PreferenceExample? Pair, string? Text, int[]? PretrainIds, string? Error, bool Truncated, int Length)
    {
        public UnpairedExample[]? Unpaired { get; init; }
        public PromptExample? Prompt { get; init; }
    }

    private static DatasetRows Process(DatasetConfig dataset, IReadOnlyList<SplitPart> parts, string key, TrainConfig config, HfTokenizer tokenizer,
        bool preference, DataOptions options, Action<string> warn, Counters totals)
    {
        var formatter = new RowFormatter(dataset, config, tokenizer, key, preference);
        var eotIds = new HashSet<int>(EndOfTurnIds(tokenizer));
        var rows = new List<TokenizedExample>();
        var pairs = new List<PreferenceExample>();
        var unpaired = new List<UnpairedExample[]>();
        var prompts = new List<PromptExample>();
        var pretrainBuffer = new List<int>();
        long read = 0, tooLong = 0, noTrainable = 0, bad = 0, truncated = 0;
        int longest = 0;
        string? firstNoTrainable = null, firstBad = null;

        {
            foreach (var chunk in DatasetSources.ReadParts(dataset, parts).Chunk(ChunkRows))
            {
                var results = new RowResult[chunk.Length];
                Parallel.For(0, chunk.Length, i => results[i] = Convert(chunk[i], formatter, tokenizer, config, eotIds));
                options.Progress?.Invoke(totals.Read + read + chunk.Length);
                for (int i = 0; i < chunk.Length; i++)
                {
                    var r = results[i];
                    read++;
                    switch (r.Outcome)
                    {
                        case Outcome.Bad:
                            if (!options.SkipBadRows) throw new InvalidInputException($"{chunk[i].Location}: {r.Error} ({key}, type {dataset.Type})");
                            bad++;
                            firstBad ??= $"{chunk[i].Location}: {r.Error}";
                            continue;
                        case Outcome.TooLong:
                            tooLong++;
                            longest = Math.Max(longest, r.Length);
                            continue;
                        case Outcome.NoTrainable:
                            noTrainable++;
                            firstNoTrainable ??= $"{chunk[i].Location}: \"{DatasetSources.Shorten(r.Text ?? "", 120)}\"";
                            continue;
                    }
                    if (r.Truncated) truncated++;
                    if (r.PretrainIds != null)
                    {
                        pretrainBuffer.AddRange(r.PretrainIds);
                        while (pretrainBuffer.Count >= config.SequenceLen)
                        {
                            var ids = pretrainBuffer.GetRange(0, config.SequenceLen).ToArray();
                            pretrainBuffer.RemoveRange(0, config.SequenceLen);
                            rows.Add(new TokenizedExample(ids, (int[])ids.Clone()));
                        }
                    }
                    else if (r.Pair != null) pairs.Add(r.Pair);
                    else if (r.Unpaired != null) unpaired.Add(r.Unpaired);
                    else if (r.Prompt != null) prompts.Add(r.Prompt);
                    else rows.Add(r.Example!);
                }
            }
        }
        if (pretrainBuffer.Count > 0)
        {
            var ids = pretrainBuffer.ToArray();
            rows.Add(new TokenizedExample(ids, (int[])ids.Clone()));
        }

        string where = $"{key} ({dataset.Path})";
        if (bad > 0) warn($"{where}: skipped {bad} malformed row(s) of {read}; first: {firstBad}");
        if (tooLong > 0)
            warn($"{where}: dropped {tooLong} of {read} row(s) longer than sequence_len {config.SequenceLen} (longest {longest} tokens); " +
                 "set excess_length_strategy: truncate to keep them cut, or raise sequence_len");
        if (truncated > 0) warn($"{where}: truncated {truncated} row(s) to sequence_len {config.SequenceLen}");
        if (noTrainable > 0)
        {
            string message = $"{where}: {noTrainable} of {read} row(s) have no trainable tokens (every label is -100) and were dropped; first: {firstNoTrainable}";
            if (rows.Count == 0 && pairs.Count == 0 && unpaired.Count == 0 && prompts.Count == 0)
                throw new InvalidInputException($"{message}; the whole dataset has nothing to learn from: with train_on_inputs: false only the turns of " +
                    $"roles_to_train ({string.Join(", ", dataset.RolesToTrain.Count > 0 ? dataset.RolesToTrain : ["assistant"])}) are trained — check the message roles, roles:, field_messages and message_property_mappings");
            warn(message);
        }
        if (read == 0) throw new InvalidInputException($"{where}: no rows in {string.Join(", ", parts.SelectMany(p => p.Files).Distinct())}" +
                                                       (parts.Any(p => !p.Slice.IsWhole) ? $" within split {dataset.Split}" : ""));
        if (rows.Count == 0 && pairs.Count == 0 && unpaired.Count == 0 && prompts.Count == 0)
            throw new InvalidInputException($"{where}: none of the {read} row(s) is usable ({tooLong} longer than sequence_len {config.SequenceLen}, {bad} malformed)");

        totals.Read += read;
        totals.TooLong += tooLong;
        totals.Truncated += truncated;
        totals.NoTrainable += noTrainable;
        totals.Bad += bad;
        return new DatasetRows(rows, pairs, unpaired, prompts);
    }

    private static DatasetRows Deduplicate(DatasetRows rows, ExactDeduplicator? dedup) => dedup == null ? rows
        : new DatasetRows(dedup.Keep(rows.Rows), dedup.Keep(rows.Pairs), dedup.Keep(rows.Unpaired), dedup.Keep(rows.Prompts));

    /// <summary>Adds a dataset's kept rows and tokens to the totals.</summary>
    private static DatasetRows Tally(DatasetRows kept, Counters totals)
    {
        var (rows, pairs, unpaired, prompts) = kept;
        totals.Kept += rows.Count + pairs.Count + unpaired.Sum(g => g.Length) + prompts.Count;
        foreach (var p in prompts) totals.Tokens += p.PromptIds.Length;
        foreach (var r in rows)
        {
            totals.Tokens += r.InputIds.Length;
            totals.Trainable += r.TrainableTokens;
        }
        foreach (var p in pairs)
        {
            totals.Tokens += p.PromptIds.Length + p.ChosenIds.Length + p.RejectedIds.Length;
            totals.Trainable += p.ChosenIds.Length + p.RejectedIds.Length;
        }
        foreach (var u in unpaired.SelectMany(g => g))
        {
            totals.Tokens += u.PromptIds.Length + u.CompletionIds.Length;
            totals.Trainable += u.CompletionIds.Length;
        }
        return kept;
    }

    private static RowResult Convert(SourceRow row, RowFormatter formatter, HfTokenizer tokenizer, TrainConfig config, HashSet<int> eotIds)
    {
        if (row.Error != null) return new RowResult(Outcome.Bad, null, null, null, null, row.Error, false, 0);
        try
        {
            int limit = config.SequenceLen;
            bool truncate = config.ExcessLengthStrategy == ExcessLengthStrategy.Truncate;
            switch (formatter.Kind)
            {
                case RowFormatKind.Pretrain:
                {
                    var ids = tokenizer.Encode(formatter.PretrainText(row.Value), addSpecialTokens: true).ToList();
                    if (tokenizer.EosTokenId is { } eos && (ids.Count == 0 || ids[^1] != eos)) ids.Add(eos);
                    return new RowResult(Outcome.Kept, null, null, null, ids.ToArray(), null, false, ids.Count);
                }
                case RowFormatKind.Prompt:
                {
                    var (text, addsSpecialTokens) = formatter.Prompt(row.Value);
                    var ids = tokenizer.Encode(text, addsSpecialTokens).ToArray();
                    if (ids.Length == 0) return new RowResult(Outcome.Bad, null, null, null, null, "the prompt encodes to no tokens", false, 0);
                    // The completion needs room too: a prompt that fills sequence_len leaves nothing to generate.
                    bool cut = ids.Length >= limit;
                    if (cut && !truncate) return new RowResult(Outcome.TooLong, null, null, null, null, null, false, ids.Length);
                    if (cut) ids = ids[^(limit - 1)..];
                    return new RowResult(Outcome.Kept, null, null, null, null, null, cut, ids.Length)
                        { Prompt = new PromptExample(ids, text, row.Value!.ToJsonString()) };
                }
                case RowFormatKind.Preference when config.Rl == RlType.Kto:
                {
                    var texts = formatter.Unpaired(row.Value);
                    var prompts = texts.Select(t => tokenizer.Encode(t.Prompt, t.PromptAddsSpecialTokens).ToArray()).ToArray();
                    var completions = texts.Select(t => EndWithEos(tokenizer.Encode(t.Completion, false), tokenizer, eotIds)).ToArray();
                    int length = Enumerable.Range(0, texts.Count).Max(i => prompts[i].Length + completions[i].Length);
                    bool cut = length > limit;
                    if (cut && !truncate) return new RowResult(Outcome.TooLong, null, null, null, null, null, false, length);
                    var examples = Enumerable.Range(0, texts.Count).Select(i =>
                    {
                        var (prompt, completion) = cut ? CutToLimit(prompts[i], [completions[i]], limit) : (prompts[i], [completions[i]]);
                        return new UnpairedExample(prompt, completion[0], texts[i].Desirable);
                    }).ToArray();
                    return new RowResult(Outcome.Kept, null, null, null, null, null, cut, length) { Unpaired = examples };
                }
                case RowFormatKind.Preference:
                {
                    var texts = formatter.Preference(row.Value);
                    var prompt = tokenizer.Encode(texts.Prompt, texts.PromptAddsSpecialTokens).ToArray();
                    var chosen = EndWithEos(tokenizer.Encode(texts.Chosen, false), tokenizer, eotIds);
                    var rejected = EndWithEos(tokenizer.Encode(texts.Rejected, false), tokenizer, eotIds);
                    int length = prompt.Length + Math.Max(chosen.Length, rejected.Length);
                    bool cut = length > limit;
                    if (cut && !truncate) return new RowResult(Outcome.TooLong, null, null, null, null, null, false, length);
                    if (cut)
                    {
                        var (shortPrompt, answers) = CutToLimit(prompt, [chosen, rejected], limit);
                        (prompt, chosen, rejected) = (shortPrompt, answers[0], answers[1]);
                    }
                    return new RowResult(Outcome.Kept, null, new PreferenceExample(prompt, chosen, rejected), null, null, null, cut, length);
                }
                default:
                {
                    var labeled = formatter.Supervised(row.Value);
                    var example = Tokenize(labeled, tokenizer);
                    int length = example.InputIds.Length;
                    bool cut = false;
                    if (length > limit)
                    {
                        if (!truncate) return new RowResult(Outcome.TooLong, null, null, null, null, null, false, length);
                        example = new TokenizedExample(example.InputIds[..limit], example.Labels[..limit]);
                        cut = true;
                    }
                    if (example.TrainableTokens == 0) return new RowResult(Outcome.NoTrainable, null, null, labeled.Text, null, null, cut, length);
                    return new RowResult(Outcome.Kept, example, null, null, null, null, cut, length);
                }
            }
        }
        catch (RowException e)
        {
            return new RowResult(Outcome.Bad, null, null, null, null, e.Message, false, 0);
        }
    }

    /// <summary>Tokenizes the text once and labels each token by the character spans it covers (a token counts when most of it is inside a span).</summary>
    public static TokenizedExample Tokenize(LabeledText labeled, HfTokenizer tokenizer)
    {
        var encoding = tokenizer.EncodeWithOffsets(labeled.Text, labeled.AddSpecialTokens);
        int n = encoding.Ids.Count;
        bool appendEos = labeled.AppendEos && tokenizer.EosTokenId is { } eos && (n == 0 || encoding.Ids[^1] != eos);
        var ids = new int[n + (appendEos ? 1 : 0)];
        var labels = new int[ids.Length];
        for (int i = 0; i < n; i++)
        {
            ids[i] = encoding.Ids[i];
            labels[i] = TokenLabels.IgnoreIndex;
            var (start, end) = encoding.Offsets[i];
            if (end <= start) continue; // tokens the post-processor added (BOS/EOS) cover no text
            int inside = 0;
            foreach (var (s, e) in labeled.TrainedSpans) inside += Math.Max(0, Math.Min(end, e) - Math.Max(start, s));
            if (inside * 2 >= end - start && inside > 0) labels[i] = ids[i];
        }
        if (labeled.AppendEos)
        {
            int last = ids.Length - 1;
            if (appendEos) ids[last] = tokenizer.EosTokenId!.Value;
            if (last >= 0) labels[last] = labeled.TrainEos ? ids[last] : TokenLabels.IgnoreIndex;
        }
        return new TokenizedExample(ids, labels);
    }

    private static IEnumerable<int> EndOfTurnIds(HfTokenizer tokenizer)
    {
        if (tokenizer.EosTokenId is { } eos) yield return eos;
        foreach (var token in new[] { "<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|end|>", "<|eom_id|>" })
            if (tokenizer.TokenToId(token) is { } id) yield return id;
    }

    /// <summary>Keeps the end of the prompt (closest to the answer, at most half the limit) and the start of each answer.</summary>
    private static (int[] Prompt, int[][] Answers) CutToLimit(int[] prompt, int[][] answers, int limit)
    {
        if (prompt.Length > limit / 2) prompt = prompt[^(limit / 2)..];
        return (prompt, answers.Select(a => a[..Math.Min(a.Length, limit - prompt.Length)]).ToArray());
    }

    private static int[] EndWithEos(IReadOnlyList<int> ids, HfTokenizer tokenizer, HashSet<int> eotIds)
    {
        var list = ids.ToList();
        if ((list.Count == 0 || !eotIds.Contains(list[^1])) && tokenizer.EosTokenId is { } eos) list.Add(eos);
        return list.ToArray();
    }

    /// <summary>weight w keeps round(w × n) rows: a seeded subset below 1, whole copies plus a seeded remainder above.</summary>
    private static DatasetRows ApplyWeight(DatasetRows rows, double? weight, long seed)
    {
        if (weight is not { } w || w == 1) return rows;
        if (w <= 0) throw new InvalidInputException($"datasets: weight {w}; expected a number > 0");
        return new DatasetRows(Weighted(rows.Rows, w, seed), Weighted(rows.Pairs, w, seed), Weighted(rows.Unpaired, w, seed), Weighted(rows.Prompts, w, seed));
    }

    private static List<T> Weighted<T>(List<T> rows, double weight, long seed)
    {
        if (rows.Count == 0) return rows;
        int target = (int)Math.Round(weight * rows.Count);
        var result = new List<T>(target);
        while (result.Count + rows.Count <= target) result.AddRange(rows);
        var order = SeededShuffle.Permutation(rows.Count, seed);
        for (int i = 0; result.Count < target; i++) result.Add(rows[order[i]]);
        return result;
    }

    private static List<T> Shuffle<T>(List<T> rows, long seed) => SeededShuffle.Permutation(rows.Count, seed).Select(i => rows[i]).ToList();

    /// <summary>val_set_size: a fraction (rounded up, like datasets' train_test_split) or a row count; the held-out rows are a seeded sample.</summary>
    public static (List<T> Train, List<T> Eval) Split<T>(List<T> rows, double valSetSize, long seed)
    {
        if (valSetSize <= 0 || rows.Count == 0) return (rows, []);
        int evalCount = valSetSize < 1 ? (int)Math.Ceiling(valSetSize * rows.Count) : (int)valSetSize;
        if (evalCount >= rows.Count)
            throw new InvalidInputException($"val_set_size: {valSetSize} holds out {evalCount} of {rows.Count} rows, leaving none to train on");
        var order = SeededShuffle.Permutation(rows.Count, seed ^ 0x5EED);
        var evalSet = new HashSet<int>(order.Take(evalCount));
        var train = new List<T>(rows.Count - evalCount);
        var eval = new List<T>(evalCount);
        for (int i = 0; i < rows.Count; i++) (evalSet.Contains(i) ? eval : train).Add(rows[i]);
        return (train, eval);
    }
}

/// <summary>Whole lines of a TextWriter handed to a line callback (download progress into DataOptions.Log).</summary>
internal sealed class LogWriter(Action<string> log) : TextWriter
{
    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;
    public override void WriteLine(string? value) => log(value ?? "");
}
