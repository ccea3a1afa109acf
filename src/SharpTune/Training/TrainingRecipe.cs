using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Distributed;
using SharpTune.Hub;
using SharpTune.Modeling;
using SharpTune.Peft;
using SharpTune.Tokenization;
using SharpTune.Training.Logging;
using TorchSharp;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>How `sharptune train` was asked to run, besides the config itself.</summary>
public sealed record TrainRequest
{
    /// <summary>The config file's folder: relative dataset and reward paths are read from it.</summary>
    public required string ConfigDir { get; init; }
    /// <summary>The config file, named in messages about it.</summary>
    public string Source { get; init; } = "config";
    public required TextWriter Console { get; init; }
    public required Action<string> Warn { get; init; }
    /// <summary>--resume DIR: the checkpoint folder to resume from.</summary>
    public string? ResumeFrom { get; init; }
    /// <summary>--resume without a folder: the latest complete checkpoint in output_dir.</summary>
    public bool Resume { get; init; }
    /// <summary>--overwrite: an earlier run in output_dir is removed instead of stopping the run.</summary>
    public bool Overwrite { get; init; }
    /// <summary>--skip-bad-rows: malformed dataset rows are skipped and counted instead of stopping the run.</summary>
    public bool SkipBadRows { get; init; }
    /// <summary>Live progress display; when set, per-step console lines come from it instead of the metrics log.</summary>
    public IProgressCallbacks? Progress { get; init; }
}

/// <summary>
/// Training as one recipe, read top to bottom: <see cref="Run"/> joins the ranks, prepares output_dir, the inputs, the
/// data and the objective; <see cref="Train"/> sets up model, parallelism, optimizer, schedule, reporting and resume,
/// runs the <see cref="TrainingLoop"/>, then exports the adapter or model. SFT, pretraining, DPO, ORPO, SimPO, KTO and
/// GRPO differ only by the <see cref="IObjectiveSetup"/> that <see cref="Objectives.For"/> picks from the config.
/// </summary>
public sealed class TrainingRecipe(TrainConfig config, string modelDir, TextWriter console)
{
    /// <summary>Live progress display; when set, per-step console lines come from it instead of the metrics log.</summary>
    public IProgressCallbacks? Progress { get; init; }
    /// <summary>The ranks of a multi-process run (mpirun, srun, sharptune launch); one process by default.</summary>
    public ICommunicator Communicator { get; init; } = new SingleProcess();
    /// <summary>hub_model_id: pushes at saves (per hub_strategy) and after the final save.</summary>
    public HubPush? Hub { get; init; }

    private bool Writer => Communicator.Rank == 0;

    /// <summary>`sharptune train`: config → ranks → output_dir → model and tokenizer → data → objective → <see cref="Train"/>.</summary>
    public static TrainOutcome Run(TrainConfig config, TrainRequest request, CancellationToken cancel = default)
    {
        // mpirun / srun / sharptune launch: join the job (MPI) before any work; one process otherwise.
        var launch = LaunchEnvironment.Read();
        using var ranks = Ranks.Start(launch, TimeSpan.FromSeconds(config.DdpTimeout));
        config = JoinRanks(config, ranks, launch, request.Console);
        Native.ComputeDevice.Resolve(config.Device);   // a missing GPU is reported before any data work
        PrepareOutputDir(config, request, ranks);
        // base_model, tokenizer_config and lora_model_dir may name hub repos: fetched into the HF cache on first use.
        var hub = new HubLookup { Settings = HubSettings.FromEnvironment(config.HubToken), Progress = new TextDownloadProgress(request.Console), Warn = request.Warn };
        var push = config.HubModelId is null ? null : new HubPush(config, hub.ResolvedSettings, request.Console);
        (config, var modelDir, var tokenizer) = ResolveInputs(config, hub, request.Source);
        Ranks.CheckSameInputs(ranks, ConfigWriter.ToYaml(config), modelDir);
        var data = PrepareData(config, tokenizer, request, ranks);
        using var objective = Objectives.For(config, data, new ObjectiveInputs(tokenizer, modelDir, request.ConfigDir, hub, request.Console, request.Warn, ranks.WorldSize));
        var resumeFrom = ResolveResume(config, request);
        var recipe = new TrainingRecipe(config, modelDir, request.Console) { Progress = request.Progress, Communicator = ranks, Hub = push };
        return recipe.Train(objective, resumeFrom, cancel);
    }

    /// <summary>Setup → loop → export of one run on the objective's batches; from the checkpoint <paramref name="resumeFrom"/> when set.</summary>
    public TrainOutcome Train(IObjectiveSetup objective, string? resumeFrom = null, CancellationToken cancel = default)
    {
        manual_seed(config.Seed);
        var device = Native.ComputeDevice.Resolve(config.Device);
        var precision = TrainingPrecision.Resolve(config, device);
        if (resumeFrom is not null && AlreadyFinished(resumeFrom, objective.Train) is { } finished) return finished;
        Directory.CreateDirectory(config.OutputDir);
        using var model = LoadModel(precision.ComputeDType, device, out var lora);
        objective.OnModelReady(model);
        PrepareForTraining(model, device);
        var trainable = TrainableParameters(model);
        var distributed = DistributedSettings.From(config);
        using var ranks = RankParallelism.Start(Communicator, model, trainable, distributed, device, lora is not null, config.Rl is RlType.Grpo);
        // ZeRO: this rank's optimizer updates (and keeps state for) only the parameters it owns.
        var owned = ranks.Parallel?.OwnedNames ?? trainable.Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var optimizer = CreateOptimizer(trainable.Where(p => owned.Contains(p.Name)).ToList(), trainable.Count, precision, distributed, device);
        int totalSteps = TotalSteps(objective.Train);
        var schedule = new LrSchedule(config.LrScheduler, config.LearningRate, LrSchedule.Warmup(config.WarmupSteps, config.WarmupRatio, totalSteps), totalSteps, config.CosineMinLrRatio ?? 0);
        var checkpoints = new RunCheckpoints(config, model, lora, optimizer, schedule, objective.Train, ranks, Hub);
        using var reporting = new RunReporting(config, console, Progress, Writer, checkpoints.Save, resumeFrom is null ? null : ResumedStep(resumeFrom), objective.Callbacks);
        var loop = new TrainingLoop(model, trainable, optimizer, objective.Objective, objective.Train, objective.Eval,
            LoopSettings(objective, totalSteps, schedule, device, precision, ranks.Parallel), reporting);
        if (resumeFrom is not null) Resume(resumeFrom, checkpoints, loop.State, owned, reporting);
        DescribeRun(model, trainable, objective.Train, totalSteps, device, precision, ranks, distributed);
        bool startsTraining = loop.State.Step < totalSteps;
        if (startsTraining) ReportOnRankZero(objective, "before training", model, ranks);
        if (Writer) Progress?.Begin(totalSteps, loop.State.Step);
        loop.Run(cancel);
        // Interrupted: the checkpoint of the last finished step is the result; a top-level model would make the run look finished.
        if (loop.Interrupted) return reporting.Outcome(loop.State, interrupted: true);
        if (startsTraining) ReportOnRankZero(objective, "after training", model, ranks);
        return Export(model, lora, checkpoints, ranks, reporting, loop.State);
    }

    // ---- setup of the job: ranks, output_dir, inputs, data, resume point ----

    /// <summary>Several ranks: each takes the GPU of its local rank (cuda:LOCAL_RANK) and its share of the node's CPU threads.</summary>
    private static TrainConfig JoinRanks(TrainConfig config, ICommunicator ranks, LaunchEnvironment launch, TextWriter console)
    {
        if (ranks.WorldSize == 1) return config;
        if (config.Device is "cuda" || (config.Device == "auto" && cuda.is_available())) config = config with { Device = $"cuda:{ranks.LocalRank}" };
        set_num_threads(Ranks.ThreadsPerRank(ranks));
        console.WriteLine($"rank {ranks.Rank} of {ranks.WorldSize} ({launch.Launcher}), {get_num_threads()} threads per rank");
        return config;
    }

    /// <summary>Rank 0 removes unfinished checkpoints and decides whether output_dir may hold this run (fresh, resume, --overwrite).</summary>
    private static void PrepareOutputDir(TrainConfig config, TrainRequest request, ICommunicator ranks)
    {
        bool resuming = request.ResumeFrom is not null || request.Resume || config.ResumeFromCheckpoint is not null
                        || (config.AutoResumeFromCheckpoints && Checkpointer.Latest(config.OutputDir) is not null);
        OnRankZero(ranks, config.OutputDir, () =>
        {
            int stale = Checkpointer.RemoveStale(config.OutputDir);
            if (stale > 0) request.Console.WriteLine($"removed {stale} unfinished checkpoint folder(s) left in {config.OutputDir} by a killed run");
            RunDirectory.PrepareStart(config.OutputDir, resuming ? StartMode.Resume : request.Overwrite ? StartMode.Overwrite : StartMode.Fresh, request.Console.WriteLine);
        });
    }

    /// <summary>The model folder (checked against the config), the tokenizer, and lora_model_dir resolved to a folder.</summary>
    private static (TrainConfig Config, string ModelDir, HfTokenizer Tokenizer) ResolveInputs(TrainConfig config, HubLookup hub, string source)
    {
        var modelDir = ModelLocator.Resolve(config.BaseModel ?? throw new InvalidInputException("base_model: missing; name a model folder or a Hugging Face repo id"),
            config.RevisionOfModel, ModelFiles.Weights, hub);
        Preflight.CheckModel(config, ModelFamilies.LoadConfig(modelDir), source);
        var tokenizer = HfTokenizer.FromDirectory(config.TokenizerConfig is { } t ? ModelLocator.Resolve(t, null, ModelFiles.Metadata, hub) : modelDir);
        if (config.LoraModelDir is { } adapterRef && !Directory.Exists(adapterRef))
            config = config with { LoraModelDir = ModelLocator.Resolve(adapterRef, null, ModelFiles.Weights, hub) };
        return (config, modelDir, tokenizer);
    }

    /// <summary>Rank 0 tokenizes and fills the prepared-data cache first; the other ranks then read the same cache.</summary>
    private static PreparedData PrepareData(TrainConfig config, HfTokenizer tokenizer, TrainRequest request, ICommunicator ranks)
    {
        if (ranks.Rank != 0) ranks.Barrier();
        var data = Preflight.PrepareData(config, tokenizer, request.ConfigDir, request.Warn, request.Source,
            new DataOptions { Log = request.Console.WriteLine, SkipBadRows = request.SkipBadRows });
        if (ranks.Rank == 0) ranks.Barrier();
        request.Console.WriteLine(config.PretrainingDataset.Count > 0
            ? $"data: pretraining_dataset streamed as training reads it ({config.MaxSteps} steps × {config.GradientAccumulationSteps * config.MicroBatchSize * ranks.WorldSize} rows of {config.SequenceLen} tokens), {data.Stats.EvalRows} eval rows"
            : $"data: {data.Stats.TrainRows} train rows, {data.Stats.EvalRows} eval rows, {data.Stats.TrainableTokens:N0} trainable tokens");
        return data;
    }

    /// <summary>
    /// --resume DIR, --resume (latest complete in output_dir), resume_from_checkpoint, or auto_resume_from_checkpoints.
    /// A named checkpoint that is damaged is an error; "the latest" passes over damaged ones with a warning.
    /// </summary>
    private static string? ResolveResume(TrainConfig config, TrainRequest request)
    {
        if (request.ResumeFrom is { } argument)
            return Directory.Exists(argument) ? Checkpointer.RequireComplete(argument) : throw new InvalidInputException($"--resume: {argument} is not a checkpoint folder");
        if (request.Resume)
            return Checkpointer.Latest(config.OutputDir, request.Warn) ?? throw new InvalidInputException($"--resume: no complete checkpoint-* folder in output_dir {config.OutputDir}");
        if (config.ResumeFromCheckpoint is { } fromConfig) return Checkpointer.RequireComplete(fromConfig);
        return config.AutoResumeFromCheckpoints ? Checkpointer.Latest(config.OutputDir, request.Warn) : null;
    }

    /// <summary>
    /// Runs a decision about output_dir on rank 0 only (one writer of the folder); every rank learns whether it refused,
    /// and the others stop with it instead of waiting at the next collective.
    /// </summary>
    private static void OnRankZero(ICommunicator ranks, string outputDir, Action decide)
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

    // ---- setup of the run: model, optimizer, loop settings, resume ----

    /// <summary>
    /// Resumed at the last step of a finished run (its model written): left exactly as it is. A run killed between its
    /// last checkpoint and its final save has no model yet: it is trained (zero steps) and written from that checkpoint.
    /// </summary>
    private TrainOutcome? AlreadyFinished(string resumeFrom, IBatchSource train) =>
        ResumedStep(resumeFrom) >= TotalSteps(train) && RunDirectory.HasFinalModel(config.OutputDir)
            ? new TrainOutcome(ResumedStep(resumeFrom), Checkpointer.LastLoss(resumeFrom), null, config.OutputDir, config.Adapter is null ? null : config.OutputDir, null, [], AlreadyFinished: true)
            : null;

    /// <summary>
    /// The model in the compute dtype on the device. Full fine-tune: every parameter trains (low-precision ones through
    /// the optimizer's float32 masters); LoRA: the frozen base plus float32 adapters and modules_to_save.
    /// </summary>
    private CausalLM LoadModel(ScalarType computeDType, Device device, out LoraSettings? lora)
    {
        var saved = config.Adapter is not null && config.LoraModelDir is { } existing ? SavedLoraAdapter.Open(existing) : null;
        var model = ModelLoader.Load(modelDir, new ModelLoadOptions
        {
            DType = computeDType,
            Device = device,
            Quantization = Modeling.Quantization.QuantizationSettings.FromConfig(config),
            Adapter = saved,
        });
        lora = saved?.Settings;
        if (config.Adapter is null)
        {
            UnfrozenParameters.Apply(model, config.UnfrozenParameters);
            return model;
        }
        if (saved is not null) return model;
        lora = new LoraSettings
        {
            R = config.LoraR ?? 8,
            Alpha = config.LoraAlpha ?? config.LoraR ?? 8,
            Dropout = config.LoraDropout,
            TargetModules = config.LoraTargetLinear ? Lora.AllLinearNames(model) : config.LoraTargetModules,
            UseRsLora = config.PeftUseRslora,
            UseDora = config.PeftUseDora,
            ModulesToSave = config.LoraModulesToSave,
            BaseModelNameOrPath = config.BaseModel ?? "",
        };
        Lora.Inject(model, lora, config.Seed);
        model.to(device);
        return model;
    }

    /// <summary>gradient_checkpointing (offloaded to host memory on CUDA) and NEFTune's embedding noise.</summary>
    private void PrepareForTraining(CausalLM model, Device device)
    {
        if (config.GradientCheckpointing != GradientCheckpointingMode.False)
        {
            bool offload = config.GradientCheckpointing == GradientCheckpointingMode.Offload && device.type == DeviceType.CUDA;
            if (config.GradientCheckpointing == GradientCheckpointingMode.Offload && !offload)
                console.WriteLine($"note: gradient_checkpointing: offload on {Native.ComputeDevice.Describe(device)} is the same as true (activations are in host memory already)");
            GradientCheckpointing.Enable(model, offload);
        }
        if (config.NeftuneNoiseAlpha is { } alpha) model.Model.EmbeddingTransform = Neftune.Noise(alpha);
    }

    private static List<TrainableParameter> TrainableParameters(CausalLM model) => model.named_parameters()
        .Where(p => p.parameter.requires_grad)
        .Select(p => new TrainableParameter(p.name, p.parameter, TrainableParameter.DecayApplies(p.name)))
        .ToList();

    /// <summary>The config's optimizer over this rank's parameters; with offload_optimizer: cpu its state and step live in host memory.</summary>
    private Optimizer CreateOptimizer(IReadOnlyList<TrainableParameter> owned, int trainableCount, TrainingPrecision precision, DistributedSettings distributed, Device device)
    {
        if (distributed.OffloadOptimizer && !OffloadsOptimizer(distributed, device) && Writer)
            console.WriteLine($"note: offload_optimizer: cpu on {Native.ComputeDevice.Describe(device)} is the same as no offload (the optimizer state is in host memory already)");
        var optimizer = Optimizer.Create(config.Optimizer, owned, config.WeightDecay, config.AdamBeta1, config.AdamBeta2, config.AdamEpsilon, precision.MasterWeights,
            stateDevice: OffloadsOptimizer(distributed, device) ? CPU : null);
        if (optimizer is Muon muon && Writer) console.WriteLine($"muon: {muon.OrthogonalisedCount} 2-D weight(s) orthogonalised, {trainableCount - muon.OrthogonalisedCount} parameter(s) with AdamW");
        return optimizer;
    }

    private static bool OffloadsOptimizer(DistributedSettings distributed, Device device) => distributed.OffloadOptimizer && device.type != DeviceType.CPU;

    /// <summary>Optimizer steps of the run: max_steps, or num_epochs over micro-batches of accumulation × world size (at most int.MaxValue).</summary>
    private int TotalSteps(IBatchSource train)
    {
        if (config.MaxSteps is > 0) return config.MaxSteps.Value;
        double steps = Math.Ceiling(config.NumEpochs * train.BatchesPerEpoch / (config.GradientAccumulationSteps * Communicator.WorldSize));
        return steps <= int.MaxValue ? (int)steps
            : throw new InvalidInputException($"num_epochs: {config.NumEpochs} over {train.BatchesPerEpoch} micro-batches per epoch is {steps:E2} steps, more than a run can count; lower num_epochs or set max_steps");
    }

    private TrainingLoopSettings LoopSettings(IObjectiveSetup objective, int totalSteps, LrSchedule schedule, Device device, TrainingPrecision precision, DataParallel? parallel)
    {
        // One optimizer step consumes accumulation × world micro-batches of the shared order.
        int stepsPerEpoch = Math.Max(1, objective.Train.BatchesPerEpoch / (config.GradientAccumulationSteps * Communicator.WorldSize));
        return new TrainingLoopSettings
        {
            TotalSteps = totalSteps,
            GradientAccumulationSteps = config.GradientAccumulationSteps,
            Schedule = schedule,
            MaxGradNorm = config.MaxGradNorm,
            LoggingSteps = Math.Max(1, config.LoggingSteps),
            EvalSteps = objective.Eval is null || !config.DoEval ? null : config.EvalSteps ?? PerEpoch(config.EvalsPerEpoch, stepsPerEpoch) ?? stepsPerEpoch,
            SaveSteps = config.SaveSteps ?? PerEpoch(config.SavesPerEpoch, stepsPerEpoch),
            EarlyStoppingPatience = config.EarlyStoppingPatience,
            LossWatchdogThreshold = config.LossWatchdogThreshold,
            LossWatchdogPatience = config.LossWatchdogPatience,
            Device = device,
            LossScaler = precision.LossScaling ? new DynamicLossScaler() : null,
            SampleMetrics = device.type == DeviceType.CUDA ? GpuMemorySampler(device.index) : null,
            Parallel = parallel,
            // Only where a step sums gradients (accumulation or ranks); adapters only: see GradientSums.
            Float64GradientSums = config.Adapter is not null && (config.GradientAccumulationSteps > 1 || Communicator.WorldSize > 1),
        };
    }

    private void Resume(string resumeFrom, RunCheckpoints checkpoints, TrainState state, IReadOnlySet<string> owned, RunReporting reporting)
    {
        checkpoints.Restore(resumeFrom, state, owned);
        reporting.Resumed(state.Step);
        console.WriteLine($"resumed from {resumeFrom} at step {state.Step}");
    }

    private void DescribeRun(CausalLM model, IReadOnlyList<TrainableParameter> trainable, IBatchSource train, int totalSteps, Device device, TrainingPrecision precision,
        RankParallelism ranks, DistributedSettings distributed)
    {
        long trainableCount = trainable.Sum(p => p.Parameter.numel()), parameterCount = model.parameters().Sum(p => p.numel());
        console.WriteLine($"training {trainableCount:N0} of {parameterCount:N0} parameters for {totalSteps} steps " +
                          $"({train.BatchesPerEpoch} micro-batches per epoch, accumulation {config.GradientAccumulationSteps}) on {Native.ComputeDevice.Describe(device)}, {precision.Describe()}");
        foreach (var line in ranks.Describe(Communicator.WorldSize, config.MicroBatchSize * config.GradientAccumulationSteps * Communicator.WorldSize, parameterCount)) console.WriteLine(line);
        if (OffloadsOptimizer(distributed, device) && Writer) console.WriteLine($"offload_optimizer: cpu: optimizer state and step in host memory, parameters on {Native.ComputeDevice.Describe(device)}");
    }

    /// <summary>The objective's held-out report runs on rank 0 only; under ZeRO-3 every rank first gathers the whole model, so rank 0 runs it without collectives.</summary>
    private void ReportOnRankZero(IObjectiveSetup objective, string when, CausalLM model, RankParallelism ranks)
    {
        if (!objective.Reports) return;
        using var whole = ranks.Materialized();
        if (!Writer) return;
        model.eval();
        objective.Report(when, model);
        model.train();
    }

    // ---- export ----

    /// <summary>
    /// The run's result in output_dir, written by rank 0 from the whole weights (gathered under ZeRO-3): the adapter (and
    /// merged/ with merge_lora) or the full model, the tokenizer files beside them, then the hub push.
    /// </summary>
    private TrainOutcome Export(CausalLM model, LoraSettings? lora, RunCheckpoints checkpoints, RankParallelism ranks, RunReporting reporting, TrainState state)
    {
        // ZeRO-3: a full fine-tune's model is streamed (rank 0 writes each parameter as it is gathered); a LoRA merge needs
        // the whole base, gathered on every rank; the adapter alone is replicated already.
        bool streamed = checkpoints.StreamsWeights;
        using var final = streamed || (lora is not null && !config.MergeLora) ? null : ranks.Materialized();
        if (!Writer)
        {
            // Rank 0 writes the results; the others take part in its gathers, then wait for it so that the job ends when the files are complete.
            checkpoints.FollowWeightsWrite();
            Communicator.Barrier();
            return reporting.Outcome(state);
        }
        string outputDir = config.OutputDir;
        checkpoints.WriteWeights(outputDir);
        string? mergedDir = lora is not null && config.MergeLora ? Path.Combine(outputDir, "merged") : null;
        if (mergedDir is not null)
        {
            if (config.MergeIntoOriginal is { } original)
                ModelIO.SaveTensors(model.Config, LoraMerge.MergeIntoOriginal(original, AdapterTensors(model), lora!, ScalarType.Float32), ScalarType.Float32, mergedDir);
            else
                ModelIO.SaveTensors(model.Config, LoraMerge.MergedTensors(model, ScalarType.Float32, warning => console.WriteLine($"warning: {warning}")), ScalarType.Float32, mergedDir);
        }
        CompanionFiles.CopyMissing(modelDir, outputDir);
        if (mergedDir is not null) CompanionFiles.CopyMissing(modelDir, mergedDir);
        var outcome = reporting.Outcome(state, lora is null ? null : outputDir, mergedDir);
        Hub?.AtEnd(outcome);
        if (ranks.Parallel is not null) Communicator.Barrier();
        return outcome;
    }

    /// <summary>gpu_mem_used_gib (NVML: allocator reserve + CUDA context) now and its peak over the logging steps so far.</summary>
    private static Func<IReadOnlyDictionary<string, double>> GpuMemorySampler(int index)
    {
        double peak = 0;
        return () =>
        {
            if (Native.Nvml.MemoryOf(Math.Max(index, 0)) is not { } memory) return new Dictionary<string, double>();
            double used = Math.Round(memory.Used / (double)(1L << 30), 2);
            peak = Math.Max(peak, used);
            return new Dictionary<string, double> { ["gpu_mem_used_gib"] = used, ["gpu_mem_peak_gib"] = peak };
        };
    }

    private static IReadOnlyDictionary<string, Tensor> AdapterTensors(CausalLM model) =>
        model.named_parameters().Where(p => Lora.IsAdapterParameter(p.name)).ToDictionary(p => Lora.FilePrefix + p.name, p => (Tensor)p.parameter.detach());

    private static int ResumedStep(string checkpointDir) =>
        int.TryParse(Path.GetFileName(checkpointDir.TrimEnd('/'))[Checkpointer.Prefix.Length..], out var step) ? step : 0;

    private static int? PerEpoch(int? timesPerEpoch, int stepsPerEpoch) =>
        timesPerEpoch is > 0 ? Math.Max(1, stepsPerEpoch / timesPerEpoch.Value) : null;
}
