using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Distributed;
using SharpTune.Hub;
using SharpTune.Modeling;
using SharpTune.Tokenization;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>`sharptune train`: config → tokenizer → data → model → training loop → exported model or adapter.</summary>
public static class TrainingJob
{
    /// <param name="overwrite">--overwrite: an earlier run in output_dir is removed instead of stopping the run.</param>
    /// <param name="source">the config file, named in messages about it.</param>
    /// <param name="skipBadRows">--skip-bad-rows: malformed dataset rows are skipped and counted instead of stopping the run.</param>
    public static TrainOutcome Run(TrainConfig config, string configDir, TextWriter console, Action<string> warn, string? resumeArgument, bool resumeRequested, CancellationToken cancel = default, Logging.IProgressCallbacks? progress = null, bool overwrite = false, string source = "config", bool skipBadRows = false)
    {
        // mpirun / srun / sharptune launch: join the job (MPI) before any work; one process otherwise.
        var launch = Distributed.LaunchEnvironment.Read();
        using var ranks = Distributed.Ranks.Start(launch, TimeSpan.FromSeconds(config.DdpTimeout));
        if (ranks.WorldSize > 1)
        {
            // cuda:LOCAL_RANK: each rank of a node takes its own GPU.
            if (config.Device is "cuda" || (config.Device == "auto" && cuda.is_available())) config = config with { Device = $"cuda:{ranks.LocalRank}" };
            set_num_threads(Distributed.Ranks.ThreadsPerRank(ranks));
            console.WriteLine($"rank {ranks.Rank} of {ranks.WorldSize} ({launch.Launcher}), {get_num_threads()} threads per rank");
        }
        return Run(config, configDir, console, warn, resumeArgument, resumeRequested, cancel, progress, ranks, overwrite, source, new DataOptions { Log = console.WriteLine, SkipBadRows = skipBadRows });
    }

    private static TrainOutcome Run(TrainConfig config, string configDir, TextWriter console, Action<string> warn, string? resumeArgument, bool resumeRequested, CancellationToken cancel, Logging.IProgressCallbacks? progress, Distributed.ICommunicator ranks, bool overwrite, string source, DataOptions dataOptions)
    {
        Native.ComputeDevice.Resolve(config.Device);   // a missing GPU is reported before any data work
        bool resuming = resumeArgument is not null || resumeRequested || config.ResumeFromCheckpoint is not null
                        || (config.AutoResumeFromCheckpoints && Checkpointer.Latest(config.OutputDir) is not null);
        OnRankZero(ranks, config.OutputDir, () =>
        {
            int stale = Checkpointer.RemoveStale(config.OutputDir);
            if (stale > 0) console.WriteLine($"removed {stale} unfinished checkpoint folder(s) left in {config.OutputDir} by a killed run");
            RunDirectory.PrepareStart(config.OutputDir, resuming ? StartMode.Resume : overwrite ? StartMode.Overwrite : StartMode.Fresh, console.WriteLine);
        });
        // base_model, tokenizer_config and lora_model_dir may name hub repos: fetched into the HF cache on first use.
        var hub = new HubLookup { Settings = HubSettings.FromEnvironment(config.HubToken), Progress = new TextDownloadProgress(console), Warn = warn };
        var push = config.HubModelId is null ? null : new HubPush(config, hub.ResolvedSettings, console);
        var modelDir = ModelLocator.Resolve(config.BaseModel ?? throw new InvalidInputException("base_model: missing; name a model folder or a Hugging Face repo id"),
            config.RevisionOfModel, ModelFiles.Weights, hub);
        Preflight.CheckModel(config, ModelFamilies.LoadConfig(modelDir), source);
        var tokenizer = HfTokenizer.FromDirectory(config.TokenizerConfig is { } t ? ModelLocator.Resolve(t, null, ModelFiles.Metadata, hub) : modelDir);
        if (config.LoraModelDir is { } adapterRef && !Directory.Exists(adapterRef))
            config = config with { LoraModelDir = ModelLocator.Resolve(adapterRef, null, ModelFiles.Weights, hub) };
        Distributed.Ranks.CheckSameInputs(ranks, ConfigWriter.ToYaml(config), modelDir);
        // Rank 0 tokenizes and fills the prepared-data cache first; the other ranks then read the same cache.
        if (ranks.Rank != 0) ranks.Barrier();
        bool streamed = config.PretrainingDataset.Count > 0;
        var data = Preflight.PrepareData(config, tokenizer, configDir, warn, source, dataOptions);
        if (ranks.Rank == 0) ranks.Barrier();
        console.WriteLine(streamed
            ? $"data: pretraining_dataset streamed as training reads it ({config.MaxSteps} steps × {config.GradientAccumulationSteps * config.MicroBatchSize * ranks.WorldSize} rows of {config.SequenceLen} tokens), {data.Stats.EvalRows} eval rows"
            : $"data: {data.Stats.TrainRows} train rows, {data.Stats.EvalRows} eval rows, {data.Stats.TrainableTokens:N0} trainable tokens");
        int padId = tokenizer.PadTokenId ?? tokenizer.EosTokenId ?? 0;
        IBatchSource train;
        IBatchSource? evalOrNull = null;
        ITrainingObjective objective;
        GrpoRolloutSource? grpoTrain = null, grpoEval = null;
        if (config.Rl is RlType.Grpo)
        {
            var settings = GrpoSettings.From(config.Trl);
            var rewards = new RewardSet(RewardFunctions.From(config, configDir), config.Trl.RewardWeights);
            int shown = config.Trl.NumCompletionsToPrint ?? 3;
            train = grpoTrain = new GrpoRolloutSource(data.PromptTrain, settings, rewards, tokenizer, padId, config.MicroBatchSize, config.GradientAccumulationSteps, config.Seed, training: true, shown);
            if (data.PromptEval.Count > 0)
                evalOrNull = grpoEval = new GrpoRolloutSource(data.PromptEval, settings, rewards, tokenizer, padId, config.EvalBatchSize ?? config.MicroBatchSize, 1, config.Seed, training: false, shown);
            objective = new GrpoObjective(settings);
        }
        else if (config.Rl is RlType.Kto)
        {
            if (data.UnpairedTrain.Count < 2)
                throw new InvalidInputException($"rl: kto needs at least 2 training examples (the KL reference point pairs prompts with other examples' completions); got {data.UnpairedTrain.Count}");
            var kto = new KtoBatchSource(data.UnpairedTrain, config.MicroBatchSize, padId, config.Seed, shuffle: true);
            var (desirable, undesirable) = kto.Counts;
            double balance = config.KtoDesirableWeight * desirable / Math.Max(config.KtoUndesirableWeight * undesirable, 1e-9);
            if (desirable > 0 && undesirable > 0 && balance is < 1 or > 4.0 / 3)
                warn($"kto: kto_desirable_weight × {desirable} desirable / (kto_undesirable_weight × {undesirable} undesirable) = {balance:F2}; " +
                     "the KTO paper advises weights that put this ratio in [1, 4/3]");
            train = kto;
            if (data.UnpairedEval.Count > 0)
                evalOrNull = new KtoBatchSource(data.UnpairedEval, config.EvalBatchSize ?? config.MicroBatchSize, padId, config.Seed, shuffle: false);
            objective = new KtoObjective(PreferenceSettings.From(config));
        }
        else if (config.Rl is not null)
        {
            train = new PreferenceBatchSource(data.PreferenceTrain, config.MicroBatchSize, padId, config.Seed, shuffle: true);
            if (data.PreferenceEval.Count > 0)
                evalOrNull = new PreferenceBatchSource(data.PreferenceEval, config.EvalBatchSize ?? config.MicroBatchSize, padId, config.Seed, shuffle: false);
            objective = new PreferenceObjective(PreferenceSettings.From(config));
        }
        else
        {
            train = streamed
                ? new StreamedPretrainSource(new PretrainStream(config, tokenizer, configDir, hub), config.MicroBatchSize, config.MaxSteps!.Value * config.GradientAccumulationSteps * ranks.WorldSize)
                : new BatchPlanSource(new BatchPlan(data.Train, config.MicroBatchSize, config.SequenceLen, config.SamplePacking, config.PadToSequenceLen, padId, config.Seed));
            if (data.Eval.Count > 0)
                evalOrNull = new BatchPlanSource(new BatchPlan(data.Eval, config.EvalBatchSize ?? config.MicroBatchSize, config.SequenceLen, config.EvalSamplePacking ?? config.SamplePacking, config.PadToSequenceLen, padId, config.Seed));
            objective = new CausalLmObjective(outputRouterLogits: config.OutputRouterLogits);
        }
        var resumeFrom = ResolveResume(config, resumeArgument, resumeRequested, warn);
        var run = new TrainingRun(config, modelDir, console) { Progress = progress, Communicator = ranks };
        if (config.Rl is RlType.Dpo or RlType.Kto && (config.Adapter is null || config.PrecomputeRefLogProbs))
        {
            // Full fine-tune has no adapter to switch off: score every row once with the starting model instead of keeping a frozen copy.
            run.ModelReady = model =>
            {
                ((TwoRowBatchSource)train).PrecomputeReference(model);
                if (evalOrNull is TwoRowBatchSource evalRows) evalRows.PrecomputeReference(model);
            };
        }
        Modeling.CausalLM? frozenReference = null;
        if (grpoTrain is not null)
        {
            run.ModelReady = model =>
            {
                // Full fine-tuning has no adapters to switch off: the KL reference is a frozen copy of the starting model.
                if (config.Trl.Beta != 0 && config.Adapter is null)
                {
                    frozenReference = ModelLoader.Load(modelDir, new ModelLoadOptions { DType = model.parameters().First().dtype, Device = model.Device });
                    foreach (var p in frozenReference.parameters()) p.requires_grad = false;
                    frozenReference.eval();
                }
                var eos = Inference.GenerationDefaults.Load(modelDir, model.Config).StopTokenIds(tokenizer);
                grpoTrain.Attach(model, frozenReference, eos);
                grpoEval?.Attach(model, frozenReference, eos);
            };
            run.ExtraCallbacks = [new GrpoCompletionLog(grpoTrain, grpoEval, config.Trl.LogCompletions, config.OutputDir, console)];
            if (grpoEval is not null)
            {
                run.BeforeTraining = model => ReportReward("before training", grpoEval, model, data.PromptEval.Count, console);
                run.AfterTraining = model => ReportReward("after training", grpoEval, model, data.PromptEval.Count, console);
            }
        }
        var examples = config.Rl is null && config.EvalExactMatchSamples > 0 ? data.Eval.Take(config.EvalExactMatchSamples).ToList() : [];
        if (examples.Count > 0) run.BeforeTraining = model => ReportExactMatch("before training", model, modelDir, tokenizer, examples, console);
        if (examples.Count > 0) run.AfterTraining = model => ReportExactMatch("after training", model, modelDir, tokenizer, examples, console);
        run.Hub = push;
        try
        {
            return run.Run(train, evalOrNull, objective, resumeFrom, cancel);
        }
        finally
        {
            frozenReference?.Dispose();
        }
    }

    /// <summary>Greedy completions of the held-out prompts, scored by the run's rewards (the figure GRPO should raise).</summary>
    private static void ReportReward(string when, GrpoRolloutSource prompts, Modeling.CausalLM model, int count, TextWriter console)
    {
        var (mean, n, sample) = prompts.GreedyReward(model, count);
        console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"held-out mean reward {when} (greedy): {mean:F3} over {n} prompts"));
        if (sample is not null)
            console.WriteLine(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"  sample: {OneLine(sample.Prompt)} → {OneLine(sample.Completion)} (reward {sample.Reward:0.###})"));
    }

    /// <summary>
    /// --resume DIR, --resume (latest complete in output_dir), resume_from_checkpoint, or auto_resume_from_checkpoints.
    /// A named checkpoint that is damaged is an error; "the latest" passes over damaged ones with a warning.
    /// </summary>
    private static string? ResolveResume(TrainConfig config, string? argument, bool requested, Action<string> warn)
    {
        if (argument is not null)
            return Directory.Exists(argument) ? Checkpointer.RequireComplete(argument) : throw new InvalidInputException($"--resume: {argument} is not a checkpoint folder");
        if (requested)
            return Checkpointer.Latest(config.OutputDir, warn) ?? throw new InvalidInputException($"--resume: no complete checkpoint-* folder in output_dir {config.OutputDir}");
        if (config.ResumeFromCheckpoint is { } fromConfig) return Checkpointer.RequireComplete(fromConfig);
        return config.AutoResumeFromCheckpoints ? Checkpointer.Latest(config.OutputDir, warn) : null;
    }

    /// <summary>
    /// Runs a decision about output_dir on rank 0 only (one writer of the folder); every rank learns whether it refused,
    /// and the others stop with it instead of waiting at the next collective.
    /// </summary>
    private static void OnRankZero(Distributed.ICommunicator ranks, string outputDir, Action decide)
    {
        InvalidInputException? refusal = null;
        if (ranks.Rank == 0)
        {
            try { decide(); }
            catch (InvalidInputException e) when (ranks.WorldSize > 1) { refusal = e; }
        }
        if (ranks.WorldSize == 1) return;
        if (ranks.Sum(refusal is null ? 0 : 1) == 0) return;
        throw refusal ?? new InvalidInputException($"output_dir {outputDir}: rank 0 stopped the run (its message says why)");
    }

    internal static string OneLine(string text) => string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>Greedy completions of held-out rows' prompts (tokens before the first label) against their labelled answer.</summary>
    private static void ReportExactMatch(string when, CausalLM model, string modelDir, HfTokenizer tokenizer, IReadOnlyList<TokenizedExample> examples, TextWriter console)
    {
        var result = new Inference.Evaluator(model, tokenizer, Inference.GenerationDefaults.Load(modelDir, model.Config)).ExactMatch(examples);
        console.WriteLine($"held-out exact match {when}: {result.Correct}/{result.Total} ({100.0 * result.Correct / Math.Max(1, result.Total):F1}%)");
        if (result.Sample is { } sample)
            console.WriteLine($"  sample: {OneLine(sample.Prompt)} → {OneLine(sample.Generated)} (expected {OneLine(sample.Expected)})");
    }
}

/// <summary>Adapts the data pipeline's batches to the trainer.</summary>
public sealed class BatchPlanSource(BatchPlan plan) : IBatchSource
{
    public int BatchesPerEpoch => plan.BatchesPerEpoch;

    public LabeledBatch Batch(int epoch, int index)
    {
        var batch = plan.Batch(epoch, index);
        // Without padding or packing the mask says nothing: leaving it out lets attention take the causal fast path.
        var mask = batch.SegmentIds is null && batch.AttentionMask.all().item<bool>() ? null : batch.AttentionMask;
        if (mask is null) batch.AttentionMask.Dispose();
        return new LabeledBatch(new ForwardBatch(batch.InputIds, mask, batch.PositionIds, batch.SegmentIds), batch.Labels);
    }
}
