using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Peft;
using SharpTune.Training.Logging;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>Where a run left its results.</summary>
/// <param name="Interrupted">Stopped on the cancellation token before the last step: a checkpoint holds step <paramref name="Steps"/>, no top-level model was written.</param>
/// <param name="AlreadyFinished">A resume of a run that had finished (its last checkpoint is the last step and its model is written): nothing was trained or written.</param>
public sealed record TrainOutcome(int Steps, double? FinalLoss, EvalResult? FinalEval, string OutputDir, string? AdapterDir, string? MergedDir, IReadOnlyList<StepLog> Logs,
    bool Interrupted = false, bool AlreadyFinished = false);

/// <summary>
/// Sets up one run from a config — model, adapter, optimizer, schedule, checkpoints, logging — and runs the shared
/// <see cref="TrainingLoop"/> on the batches it is given. Data preparation happens before (see TrainingJob).
/// </summary>
public sealed class TrainingRun(TrainConfig config, string modelDir, TextWriter console)
{
    /// <summary>Live progress display; when set, per-step console lines come from it instead of the metrics log.</summary>
    public IProgressCallbacks? Progress { get; set; }

    /// <summary>Called once the starting model is built, before any checkpoint is restored (e.g. to score it as a DPO reference).</summary>
    public Action<CausalLM>? ModelReady { get; set; }
    /// <summary>Callbacks besides metrics, plot, progress and TensorBoard (e.g. GRPO's completion log).</summary>
    public IReadOnlyList<ITrainerCallbacks> ExtraCallbacks { get; set; } = [];
    /// <summary>Called with the model (eval mode, adapters attached) before the first step and after the last.</summary>
    public Action<CausalLM>? BeforeTraining { get; set; }
    public Action<CausalLM>? AfterTraining { get; set; }
    /// <summary>hub_model_id: pushes at saves (per hub_strategy) and after the final save.</summary>
    public HubPush? Hub { get; set; }
    /// <summary>The ranks of a multi-process run (mpirun, srun, sharptune launch); one process by default.</summary>
    public Distributed.ICommunicator Communicator { get; init; } = new Distributed.SingleProcess();

    public TrainOutcome Run(IBatchSource train, IBatchSource? eval, ITrainingObjective objective, string? resumeFrom = null, CancellationToken cancel = default)
    {
        manual_seed(config.Seed);
        var device = Native.ComputeDevice.Resolve(config.Device);
        var precision = TrainingPrecision.Resolve(config, device);
        var outputDir = config.OutputDir;
        // Resumed at the last step of a finished run (its model written): left exactly as it is. A run killed between its
        // last checkpoint and its final save has no model yet: it is written below from that checkpoint.
        if (resumeFrom is not null && ResumedStep(resumeFrom) >= TotalSteps(train) && RunDirectory.HasFinalModel(outputDir))
            return new TrainOutcome(ResumedStep(resumeFrom), Checkpointer.LastLoss(resumeFrom), null, outputDir, config.Adapter is null ? null : outputDir, null, [], AlreadyFinished: true);
        Directory.CreateDirectory(outputDir);
        using var model = LoadModel(precision.ComputeDType, device, out var lora);
        ModelReady?.Invoke(model);
        if (config.GradientCheckpointing != GradientCheckpointingMode.False)
        {
            bool offload = config.GradientCheckpointing == GradientCheckpointingMode.Offload && device.type == DeviceType.CUDA;
            if (config.GradientCheckpointing == GradientCheckpointingMode.Offload && !offload)
                console.WriteLine($"note: gradient_checkpointing: offload on {Native.ComputeDevice.Describe(device)} is the same as true (activations are in host memory already)");
            GradientCheckpointing.Enable(model, offload);
        }
        if (config.NeftuneNoiseAlpha is { } alpha) model.Model.EmbeddingTransform = Neftune.Noise(alpha);
        var trainable = model.named_parameters()
            .Where(p => p.parameter.requires_grad)
            .Select(p => new TrainableParameter(p.name, p.parameter, TrainableParameter.DecayApplies(p.name)))
            .ToList();
        var distributed = Distributed.DistributedSettings.From(config);
        long trainableCount = trainable.Sum(p => p.Parameter.numel()), parameterCount = model.parameters().Sum(p => p.numel());
        bool writer = Communicator.Rank == 0;
        using var gpuCollectives = StartGpuCollectives(device, distributed);
        var (parallel, shards) = StartDataParallel(model, trainable, distributed, gpuCollectives, lora is not null);
        // ZeRO: this rank's optimizer updates (and keeps state for) only the parameters it owns.
        var owned = parallel?.OwnedNames;
        bool offloadOptimizer = distributed.OffloadOptimizer && device.type != DeviceType.CPU;
        if (distributed.OffloadOptimizer && !offloadOptimizer && writer)
            console.WriteLine($"note: offload_optimizer: cpu on {Native.ComputeDevice.Describe(device)} is the same as no offload (the optimizer state is in host memory already)");
        var optimizer = Optimizer.Create(config.Optimizer, owned is null ? trainable : trainable.Where(p => owned.Contains(p.Name)).ToList(),
            config.WeightDecay, config.AdamBeta1, config.AdamBeta2, config.AdamEpsilon, precision.MasterWeights, stateDevice: offloadOptimizer ? CPU : null);
        if (optimizer is Muon muon && writer) console.WriteLine($"muon: {muon.OrthogonalisedCount} 2-D weight(s) orthogonalised, {trainable.Count - muon.OrthogonalisedCount} parameter(s) with AdamW");
        // One optimizer step consumes accumulation × world micro-batches of the shared order.
        int microPerStep = config.GradientAccumulationSteps * Communicator.WorldSize;
        int stepsPerEpoch = Math.Max(1, train.BatchesPerEpoch / microPerStep);
        int totalSteps = TotalSteps(train);
        var schedule = new LrSchedule(config.LrScheduler, config.LearningRate,
            LrSchedule.Warmup(config.WarmupSteps, config.WarmupRatio, totalSteps), totalSteps, config.CosineMinLrRatio ?? 0);
        var settings = new TrainingLoopSettings
        {
            TotalSteps = totalSteps,
            GradientAccumulationSteps = config.GradientAccumulationSteps,
            Schedule = schedule,
            MaxGradNorm = config.MaxGradNorm,
            LoggingSteps = Math.Max(1, config.LoggingSteps),
            EvalSteps = eval is null || !config.DoEval ? null : config.EvalSteps ?? PerEpoch(config.EvalsPerEpoch, stepsPerEpoch) ?? stepsPerEpoch,
            SaveSteps = config.SaveSteps ?? PerEpoch(config.SavesPerEpoch, stepsPerEpoch),
            EarlyStoppingPatience = config.EarlyStoppingPatience,
            LossWatchdogThreshold = config.LossWatchdogThreshold,
            LossWatchdogPatience = config.LossWatchdogPatience,
            Device = device,
            LossScaler = precision.LossScaling ? new DynamicLossScaler() : null,
            SampleMetrics = device.type == DeviceType.CUDA ? GpuMemorySampler(device.index) : null,
            Parallel = parallel,
        };
        var checkpointer = new Checkpointer(outputDir, config.SaveTotalLimit);
        var sourceState = train as ICheckpointedSource;
        var logs = new List<StepLog>();
        EvalResult? lastEval = null;
        void WriteWeights(string dir)
        {
            if (lora is not null) Lora.Save(model, lora, dir);
            else ModelIO.Save(model, dir);
        }
        var shardedCheckpoint = parallel is null ? null : new DistributedCheckpoint(parallel, outputDir);
        void SaveCheckpoint(TrainState state)
        {
            // ZeRO-3: the checkpoint's model files are the consolidated weights, gathered on every rank for the write.
            using var whole = Materialized(shards);
            void Write(Action<string>? completeShards)
            {
                Action<string>? writeState = sourceState is null && completeShards is null ? null : dir => { sourceState?.SaveState(dir); completeShards?.Invoke(dir); };
                string saved = checkpointer.Save(state, optimizer, schedule, WriteWeights, ConfigWriter.ToYaml(config), writeState);
                Hub?.AfterSave(saved, state.Step);
            }
            if (shardedCheckpoint is null) Write(null);
            else shardedCheckpoint.Save(state, optimizer, Write);
        }
        // Only rank 0 writes logs, TensorBoard, plots and the progress display; the other ranks take part in saves only.
        var metrics = writer ? new MetricsLog(outputDir, Progress is null ? console : TextWriter.Null) { SaveCheckpoint = SaveCheckpoint } : null;
        var plot = writer ? new LossPlot(outputDir) : null;
        using var tensorBoard = writer && config.UseTensorboard ? new TensorBoardWriter(outputDir, resumedAtStep: resumeFrom is null ? null : ResumedStep(resumeFrom)) : null;
        ITrainerCallbacks[] sinks = metrics is null || plot is null ? [new SaveOnlyCallbacks(SaveCheckpoint)]
            : [metrics, plot, .. Progress is null ? Array.Empty<ITrainerCallbacks>() : [Progress], .. tensorBoard is null ? Array.Empty<ITrainerCallbacks>() : [tensorBoard], .. ExtraCallbacks];
        var callbacks = new RecordingCallbacks(new CompositeCallbacks(sinks), logs.Add, e => lastEval = e);
        var trainer = new TrainingLoop(model, trainable, optimizer, objective, train, eval, settings, callbacks);
        if (resumeFrom is not null)
        {
            // ZeRO-3: every parameter present to load the checkpoint's weights into; each rank then keeps its own.
            using var loading = Materialized(shards, values: false);
            Checkpointer.Restore(resumeFrom, trainer.State, optimizer, dir =>
            {
                if (lora is not null) Lora.LoadWeights(model, dir);
                else
                {
                    using var checkpoint = SafeTensors.SafeTensorsCheckpoint.Open(dir);
                    ModelIO.LoadParameters(model, checkpoint, dir, strict: true);
                }
            }, sourceState is null ? null : sourceState.RestoreState,
                // A ZeRO checkpoint's optimizer state is spread over one file per rank that wrote it.
                parallel is not null || File.Exists(Path.Combine(resumeFrom, DistributedCheckpoint.MetadataFile))
                    ? dir => DistributedCheckpoint.LoadOwned(dir, optimizer, owned ?? trainable.Select(p => p.Name).ToHashSet(StringComparer.Ordinal)) : null);
            metrics?.TruncateAfter(trainer.State.Step);
            plot?.LoadMetricsLog(Path.Combine(outputDir, "metrics.jsonl"));
            console.WriteLine($"resumed from {resumeFrom} at step {trainer.State.Step}");
        }
        console.WriteLine($"training {trainableCount:N0} of {parameterCount:N0} parameters for {totalSteps} steps " +
                          $"({train.BatchesPerEpoch} micro-batches per epoch, accumulation {config.GradientAccumulationSteps}) on {Native.ComputeDevice.Describe(device)}, {precision.Describe()}");
        if (parallel is not null)
            console.WriteLine($"data parallel: {Communicator.WorldSize} ranks, {DescribeStage(shards is null ? parallel.Stage : Distributed.ZeroStage.Parameters)}, global batch {config.MicroBatchSize * microPerStep} rows, gradients over {gpuCollectives?.Description ?? "MPI (host memory)"}");
        if (shards is not null)
            console.WriteLine($"ZeRO-3: this rank keeps {shards.OwnedElements:N0} of {parameterCount:N0} parameters between uses; each group is gathered for its forward and again, recomputed, for its backward");
        if (offloadOptimizer && writer) console.WriteLine($"offload_optimizer: cpu: optimizer state and step in host memory, parameters on {Native.ComputeDevice.Describe(device)}");
        double? LastLoss() => logs.LastOrDefault()?.Loss ?? trainer.State.LogHistory.LastOrDefault(h => h.ContainsKey("loss"))?["loss"];
        bool startsTraining = trainer.State.Step < totalSteps;
        if (startsTraining) RunHookOnRankZero(BeforeTraining, model, shards);
        if (writer) Progress?.Begin(totalSteps, trainer.State.Step);
        trainer.Run(cancel);
        // Interrupted: the checkpoint of the last finished step is the result; a top-level model would make the run look finished.
        if (trainer.Interrupted)
            return new TrainOutcome(trainer.State.Step, LastLoss(), lastEval, outputDir, null, null, logs, Interrupted: true);
        if (startsTraining) RunHookOnRankZero(AfterTraining, model, shards);
        // ZeRO-3: the final model, adapter and merge are written from the whole weights, gathered on every rank.
        using var final = Materialized(shards);
        if (!writer)
        {
            // Rank 0 writes the results; the others wait for it so that the job ends when the files are complete.
            Communicator.Barrier();
            return new TrainOutcome(trainer.State.Step, LastLoss(), lastEval, outputDir, null, null, logs);
        }

        string? adapterDir = null, mergedDir = null;
        if (lora is not null)
        {
            Lora.Save(model, lora, outputDir);
            adapterDir = outputDir;
            if (config.MergeLora)
            {
                mergedDir = Path.Combine(outputDir, "merged");
                if (config.MergeIntoOriginal is { } original)
                    ModelIO.SaveTensors(model.Config, Peft.Quantization.QLoraMerge.MergeIntoOriginal(original, AdapterTensors(model), lora, ScalarType.Float32), ScalarType.Float32, mergedDir);
                else
                    ModelIO.SaveTensors(model.Config, Peft.Quantization.QLoraMerge.MergedTensors(model, ScalarType.Float32, warning => console.WriteLine($"warning: {warning}")), ScalarType.Float32, mergedDir);
            }
        }
        else
        {
            ModelIO.Save(model, outputDir);
        }
        ModelIO.CopyTokenizerFiles(modelDir, outputDir);
        if (mergedDir is not null) ModelIO.CopyTokenizerFiles(modelDir, mergedDir);
        var outcome = new TrainOutcome(trainer.State.Step, LastLoss(), lastEval, outputDir, adapterDir, mergedDir, logs);
        Hub?.AtEnd(outcome);
        if (parallel is not null) Communicator.Barrier();
        return outcome;
    }

    /// <summary>Optimizer steps of the run: max_steps, or num_epochs over micro-batches of accumulation × world size (at most int.MaxValue).</summary>
    private int TotalSteps(IBatchSource train)
    {
        if (config.MaxSteps is > 0) return config.MaxSteps.Value;
        double steps = Math.Ceiling(config.NumEpochs * train.BatchesPerEpoch / (config.GradientAccumulationSteps * Communicator.WorldSize));
        return steps <= int.MaxValue ? (int)steps
            : throw new InvalidInputException($"num_epochs: {config.NumEpochs} over {train.BatchesPerEpoch} micro-batches per epoch is {steps:E2} steps, more than a run can count; lower num_epochs or set max_steps");
    }

    /// <summary>Several ranks with the model on a GPU: NCCL between the ranks' GPUs (MPI stays the rendezvous); null otherwise.</summary>
    private Distributed.IDeviceCollectives? StartGpuCollectives(Device device, Distributed.DistributedSettings settings) =>
        Communicator.WorldSize > 1 && device.type == DeviceType.CUDA ? Distributed.NcclCommunicator.Start(Communicator, device, settings.Timeout) : null;

    /// <summary>
    /// Several ranks: the data-parallel reducer over the trainable parameters, with rank 0's starting values everywhere;
    /// under ZeRO-3 also the parameter shards, the model running group by group through them.
    /// </summary>
    private (Distributed.DataParallel?, Distributed.ParameterShards?) StartDataParallel(CausalLM model, IReadOnlyList<TrainableParameter> trainable,
        Distributed.DistributedSettings settings, Distributed.IDeviceCollectives? gpuCollectives, bool adapter)
    {
        if (Communicator.WorldSize == 1) return (null, null);
        if (config.Rl is RlType.Grpo)
            throw new InvalidInputException("rl: grpo runs in one process in this build (its rollouts are sampled per process); launch it without mpirun/srun");
        var named = trainable.Select(p => (p.Name, p.Parameter)).ToList();
        if (settings.Stage != Distributed.ZeroStage.Parameters)
        {
            var parallel = new Distributed.DataParallel(Communicator, named, settings.Stage, settings.BucketCapMb, new Distributed.BucketCollectives(Communicator, gpuCollectives));
            parallel.BroadcastParameters();
            return (parallel, null);
        }
        if (config.LoadIn4bit || config.LoadIn8bit)
            throw new InvalidInputException("ZeRO-3 (zero_optimization.stage 3 / fsdp full_shard) with load_in_4bit / load_in_8bit: the quantized base is not sharded in this build; use ZeRO-2 (stage 2 / shard_grad_op) for QLoRA, or ZeRO-3 with adapter: lora on the unquantized base");
        var shards = new Distributed.ParameterShards(Communicator, ShardGroups(model, adapter));
        ShardedExecution.Enable(model, shards);
        // Full fine-tune: every trainable parameter is sharded; the owner's copy is the one every rank gathers (the
        // ranks loaded the same files, checked by checksum), so nothing is broadcast. LoRA: the adapters are replicated
        // and data-parallel (DDP), rank 0's initialisation broadcast as usual.
        if (!adapter) return (new Distributed.DataParallel(Communicator, named, Distributed.ZeroStage.Parameters, settings.BucketCapMb,
            new Distributed.BucketCollectives(Communicator, gpuCollectives), shards.Owners), shards);
        var replicated = new Distributed.DataParallel(Communicator, named, Distributed.ZeroStage.None, settings.BucketCapMb,
            new Distributed.BucketCollectives(Communicator, gpuCollectives));
        replicated.BroadcastParameters();
        return (replicated, shards);
    }

    /// <summary>
    /// ZeRO-3's parameter groups in the model's order: the embedding, each decoder layer, the final norm, lm_head (when
    /// untied). Sharded are all parameters of a full fine-tune and the frozen ones under LoRA (its adapters and
    /// modules_to_save stay replicated). A parameter outside these groups is refused rather than silently replicated.
    /// </summary>
    private static List<(nn.Module, IReadOnlyList<(string, Parameter)>)> ShardGroups(CausalLM model, bool adapter)
    {
        var modules = new List<(nn.Module Module, string Prefix)> { (model.Model.EmbedTokens, "model.embed_tokens.") };
        modules.AddRange(model.Model.Layers.Select((layer, i) => ((nn.Module)layer, $"model.layers.{i}.")));
        modules.Add((model.Model.FinalNorm, "model.norm."));
        if (model.LmHead is { } head) modules.Add((head, "lm_head."));
        bool Sharded(Parameter p) => !adapter || !p.requires_grad;
        var groups = modules.Select(m => (m.Module, (IReadOnlyList<(string, Parameter)>)m.Module.named_parameters()
            .Where(p => Sharded(p.parameter)).Select(p => (m.Prefix + p.name, p.parameter)).ToList())).ToList();
        var covered = groups.SelectMany(g => g.Item2.Select(p => p.Item1)).ToHashSet(StringComparer.Ordinal);
        if (model.named_parameters().FirstOrDefault(p => Sharded(p.parameter) && !covered.Contains(p.name)) is { name: { } outside })
            throw new InvalidInputException($"ZeRO-3: parameter {outside} is outside the decoder layers, embedding, final norm and lm_head that this build shards; use ZeRO-2");
        return groups;
    }

    /// <summary>ZeRO-3: every parameter present on every rank until disposed (a collective: all ranks call it); otherwise nothing.</summary>
    private static IDisposable? Materialized(Distributed.ParameterShards? shards, bool values = true)
    {
        if (shards is null) return null;
        shards.MaterializeAll(values);
        return new Release(shards.ReleaseAll);
    }

    private sealed class Release(Action release) : IDisposable
    {
        public void Dispose() => release();
    }

    /// <summary>A hook runs on rank 0 only; under ZeRO-3 every rank first gathers the whole model, so rank 0 runs it without collectives.</summary>
    private void RunHookOnRankZero(Action<CausalLM>? hook, CausalLM model, Distributed.ParameterShards? shards)
    {
        if (hook is null) return;
        using var whole = Materialized(shards);
        if (Communicator.Rank == 0) RunHook(hook, model);
    }

    private static string DescribeStage(Distributed.ZeroStage stage) => stage switch
    {
        Distributed.ZeroStage.None => "DDP (replicated optimizer state)",
        Distributed.ZeroStage.OptimizerState => "ZeRO-1 (optimizer state sharded)",
        Distributed.ZeroStage.Gradients => "ZeRO-2 (optimizer state and gradients sharded)",
        _ => "ZeRO-3 (parameters, gradients and optimizer state sharded)",
    };

    private sealed class SaveOnlyCallbacks(Action<TrainState> save) : ITrainerCallbacks
    {
        public void OnLog(TrainState state, StepLog log) { }
        public void OnEval(TrainState state, EvalResult result) { }
        public void OnSave(TrainState state) => save(state);
    }

    /// <summary>
    /// The model in the compute dtype on the device. Full fine-tune: every parameter trains (low-precision ones through
    /// the optimizer's float32 masters); LoRA: the frozen base plus float32 adapters and modules_to_save.
    /// </summary>
    private CausalLM LoadModel(ScalarType computeDType, Device device, out LoraSettings? lora)
    {
        var quantization = Peft.Quantization.QuantizationSettings.FromConfig(config);
        if (quantization is not null && device.type != DeviceType.CPU)
            throw new InvalidInputException($"load_in_4bit / load_in_8bit: the quantized kernels of this build run on the CPU only; use device: cpu, or LoRA on the bf16 model (adapter: lora) on {Native.ComputeDevice.Describe(device)}");
        var model = quantization is null ? ModelIO.Load(modelDir, computeDType, device) : Peft.Quantization.QuantizedModelLoader.Load(modelDir, computeDType, quantization);
        lora = null;
        if (config.Adapter is null)
        {
            UnfrozenParameters.Apply(model, config.UnfrozenParameters);
            return model;
        }
        if (config.LoraModelDir is { } existing)
        {
            lora = Lora.Apply(model, existing);
            model.to(device);
            return model;
        }
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

    private static void RunHook(Action<CausalLM>? hook, CausalLM model)
    {
        if (hook is null) return;
        model.eval();
        hook(model);
        model.train();
    }

    private static int? PerEpoch(int? timesPerEpoch, int stepsPerEpoch) =>
        timesPerEpoch is > 0 ? Math.Max(1, stepsPerEpoch / timesPerEpoch.Value) : null;

    private sealed class RecordingCallbacks(ITrainerCallbacks inner, Action<StepLog> onLog, Action<EvalResult> onEval) : ITrainerCallbacks
    {
        public void OnLog(TrainState state, StepLog log) { onLog(log); inner.OnLog(state, log); }
        public void OnEval(TrainState state, EvalResult result) { onEval(result); inner.OnEval(state, result); }
        public void OnSave(TrainState state) => inner.OnSave(state);
    }
}

/// <summary>NEFTune (Jain et al. 2023): uniform noise of scale α/√(T·H) on the input embeddings, training only.</summary>
public static class Neftune
{
    public static Func<Tensor, Tensor> Noise(double alpha) => embeddings =>
    {
        double magnitude = alpha / Math.Sqrt(embeddings.shape[1] * embeddings.shape[2]);
        return embeddings + empty_like(embeddings).uniform_(-magnitude, magnitude);
    };
}
