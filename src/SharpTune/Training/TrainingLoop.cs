using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>Step-level settings of a run, already resolved from the config (total steps known).</summary>
public sealed record TrainingLoopSettings
{
    public required int TotalSteps { get; init; }
    public required int GradientAccumulationSteps { get; init; }
    public required LrSchedule Schedule { get; init; }
    public double MaxGradNorm { get; init; } = 1.0;
    public int LoggingSteps { get; init; } = 1;
    public int? EvalSteps { get; init; }
    public int? SaveSteps { get; init; }
    public int? EarlyStoppingPatience { get; init; }
    public double? LossWatchdogThreshold { get; init; }
    public int LossWatchdogPatience { get; init; } = 3;
    /// <summary>Where batches are moved before the forward pass (the model's device).</summary>
    public Device? Device { get; init; }
    /// <summary>fp16: the dynamic loss scale; null without loss scaling.</summary>
    public DynamicLossScaler? LossScaler { get; init; }
    /// <summary>Figures read at each logging step besides the objective's (e.g. GPU memory), merged into the step's metrics.</summary>
    public Func<IReadOnlyDictionary<string, double>>? SampleMetrics { get; init; }
    /// <summary>
    /// Multi-process runs: this rank's share of every step (micro-batch global index × world + rank), the global token
    /// count, gradient and norm reductions and (ZeRO) the parameter all-gather. Null in one process.
    /// </summary>
    public Distributed.DataParallel? Parallel { get; init; }
    /// <summary>Sum the step's gradients in float64 (adapter runs; see <see cref="GradientSums"/>).</summary>
    public bool Float64GradientSums { get; init; }
}

/// <summary>
/// The one training loop: accumulate → clip → step → zero → schedule → log → eval → checkpoint. SFT, pretraining
/// and preference objectives differ only by <see cref="ITrainingObjective"/>.
/// </summary>
public sealed class TrainingLoop(CausalLM model, IReadOnlyList<TrainableParameter> trainable, Optimizer optimizer, ITrainingObjective objective,
    IBatchSource train, IBatchSource? eval, TrainingLoopSettings settings, ITrainerCallbacks callbacks)
{
    public TrainState State { get; } = new() { LossScaler = settings.LossScaler };

    /// <summary>The loop stopped on the cancellation token (SIGINT, SIGTERM, a job cancel) before the last step; a checkpoint holds the last finished step.</summary>
    public bool Interrupted { get; private set; }

    /// <summary>The step of the last checkpoint this loop wrote (-1: none yet).</summary>
    private int savedStep = -1;

    public void Run(CancellationToken cancel = default)
    {
        using var window = new LoggingWindow(settings.Parallel, settings.SampleMetrics, State.TokensSeen);
        var watchdog = new LossWatchdog(settings.LossWatchdogThreshold, settings.LossWatchdogPatience);
        var earlyStopping = new EarlyStopping(settings.EarlyStoppingPatience);
        var scaler = State.LossScaler;
        using var sums = settings.Float64GradientSums ? new GradientSums(trainable) : null;
        model.train();
        bool stopRequested = false, stoppedEarly = false;
        while (State.Step < settings.TotalSteps && !(stopRequested = StopRequested(cancel)))
        {
            int step = State.Step;
            var (batches, units) = StepBatches(step);
            using (var stepScope = NewDisposeScope())
            {
                foreach (var batch in batches)
                {
                    Accumulate(batch, units, window);
                    sums?.AddMicroBatch();
                }
                ReduceGradients(sums);
                var (norm, multiplier) = ClipGradients(settings.MaxGradNorm, scaler?.Scale ?? 1.0);
                window.EndStep(norm);
                // fp16 only: a step with inf/NaN gradients is skipped and the scale backs off (one read-back per step, as GradScaler).
                if (scaler is null || scaler.Update(isfinite(norm).item<bool>())) optimizer.Step(settings.Schedule.At(step), multiplier);
                optimizer.ZeroGrad();
                // ZeRO: owners send their updated parameters to every rank; the gradients of parameters owned elsewhere are released.
                settings.Parallel?.AfterStep();
            }
            State.Step = step + 1;
            State.TokensSeen += units;
            bool last = State.Step == settings.TotalSteps;
            if (State.Step % settings.LoggingSteps == 0 || last) Log(window.Close(State.Step, State.TokensSeen, settings.Schedule.At(step), Epoch()), watchdog);
            if (eval is not null && settings.EvalSteps is { } every && (State.Step % every == 0 || last) && (stoppedEarly = EvaluationStops(earlyStopping)))
            {
                Save();
                break;
            }
            if ((settings.SaveSteps is { } save && State.Step % save == 0) || last) Save();
        }
        // SIGINT / SIGTERM: leave a checkpoint of the last finished step to resume from (once: save_steps may have just written it).
        Interrupted = stopRequested && !stoppedEarly && State.Step < settings.TotalSteps;
        if (Interrupted && savedStep != State.Step) Save();
    }

    /// <summary>A logging step: its figures go to the state's history and the callbacks; the watchdog may stop the run (with a checkpoint).</summary>
    private void Log(StepLog log, LossWatchdog watchdog)
    {
        State.LogHistory.Add(new Dictionary<string, double> { ["step"] = log.Step, ["loss"] = log.Loss, ["learning_rate"] = log.LearningRate, ["grad_norm"] = log.GradNorm });
        callbacks.OnLog(State, log);
        if (!watchdog.Trips(log.Loss)) return;
        Save();
        throw watchdog.Stopped(log.Loss, State.Step);
    }

    /// <summary>An evaluation, reported to the callbacks; true when early stopping ends the run here.</summary>
    private bool EvaluationStops(EarlyStopping earlyStopping)
    {
        var result = Evaluate();
        callbacks.OnEval(State, result);
        return earlyStopping.Stops(State, result);
    }

    private void Save()
    {
        callbacks.OnSave(State);
        savedStep = State.Step;
    }

    /// <summary>Epochs done: micro-batches consumed (accumulation × world per step) over the micro-batches of an epoch.</summary>
    private double Epoch() => (double)State.Step * settings.GradientAccumulationSteps * World / train.BatchesPerEpoch;

    /// <summary>
    /// The micro-batches of one optimizer step, on the device, and the units (tokens, pairs) of the whole step they are
    /// normalised by: token-normalised accumulation divides every micro-batch's summed loss by the step's units, over all
    /// ranks under data parallel (one big batch's loss).
    /// </summary>
    private (List<LabeledBatch> Batches, long Units) StepBatches(int step)
    {
        var batches = Enumerable.Range(0, settings.GradientAccumulationSteps).Select(i => NextBatch(step, i)).ToList();
        // Units are counted on the host-side batches, before they move to the device: no device read-back.
        long units = batches.Sum(objective.Units);
        if (settings.Parallel is { } parallel) units = parallel.GlobalUnits(units);
        return (batches.Select(b => b.MoveTo(settings.Device)).ToList(), units);
    }

    /// <summary>Forward and backward of one micro-batch, its loss divided by the step's units (and scaled under fp16); the batch is disposed.</summary>
    private void Accumulate(LabeledBatch batch, long units, LoggingWindow window)
    {
        using var scope = NewDisposeScope();
        var output = objective.Compute(model, batch);
        using var scaled = output.LossSum / Math.Max(units, 1);
        if (State.LossScaler is not { } scaler) scaled.backward();
        else
        {
            using var lossScaled = scaled * scaler.Scale;
            lossScaled.backward();
        }
        window.AddMicroBatch(scaled, output.Metrics, settings.GradientAccumulationSteps);
        batch.Dispose();
    }

    /// <summary>Loss and metrics over every eval batch, normalised by all eval units (tokens, pairs), not a mean of batch means.</summary>
    public EvalResult Evaluate()
    {
        model.eval();
        double sum = 0;
        long units = 0;
        var metricSums = new Dictionary<string, double>();
        using (no_grad())
        {
            // Data parallel: rank r scores batches r, r + world, …; a rank left with fewer than the others also scores
            // batch 0 with weight 0, so that every rank runs as many forwards (ZeRO-3 gathers parameters in each) and
            // knows the metric names the reduction below runs over.
            var mine = Enumerable.Range(0, eval!.BatchesPerEpoch).Where(i => i % World == Rank).ToList();
            int perRank = Math.Max(1, (eval.BatchesPerEpoch + World - 1) / World);
            int weighted = mine.Count;
            while (mine.Count < perRank) mine.Add(0);
            for (int k = 0; k < mine.Count; k++)
            {
                int i = mine[k];
                bool weightless = k >= weighted;
                using var scope = NewDisposeScope();
                var hostBatch = eval.Batch(0, i);
                long batchUnits = weightless ? 0 : objective.Units(hostBatch);
                using var batch = hostBatch.MoveTo(settings.Device);
                units += batchUnits;
                var output = objective.Compute(model, batch);
                if (!weightless) sum += output.LossSum.item<float>();
                // Batch metrics are means over the batch: weight them by its units, so that e.g. an accuracy is the fraction over the whole set.
                foreach (var (name, value) in output.Metrics) metricSums[name] = metricSums.GetValueOrDefault(name) + (double)value.item<float>() * batchUnits;
            }
        }
        model.train();
        if (settings.Parallel is { } parallel)
        {
            var names = metricSums.Keys.Order(StringComparer.Ordinal).ToList();
            double[] figures = [sum, units, .. names.Select(n => metricSums[n])];
            parallel.SumInPlace(figures);
            (sum, units) = (figures[0], (long)figures[1]);
            for (int k = 0; k < names.Count; k++) metricSums[names[k]] = figures[2 + k];
        }
        double loss = sum / Math.Max(units, 1);
        var metrics = metricSums.ToDictionary(m => m.Key, m => m.Value / Math.Max(units, 1));
        return new EvalResult(State.Step, loss, objective.LossIsTokenNll ? Math.Exp(loss) : null, units, metrics);
    }

    private int World => settings.Parallel?.WorldSize ?? 1;

    /// <summary>
    /// Whether to stop before the next step. With several ranks every rank stops at the same step when any was signalled
    /// (each rank gets the signal at its own moment; one stopping alone would leave the others waiting in a collective).
    /// </summary>
    private bool StopRequested(CancellationToken cancel) =>
        settings.Parallel is { } parallel ? parallel.GlobalUnits(cancel.IsCancellationRequested ? 1 : 0) > 0 : cancel.IsCancellationRequested;
    private int Rank => settings.Parallel?.Rank ?? 0;

    /// <summary>
    /// Micro-batch i of optimizer step `step`, walking epochs in order. With several ranks a step spans
    /// accumulation × world micro-batches of the shared seeded order; rank r takes every world-th one, so that the ranks
    /// together see exactly the batches one process with accumulation × world would.
    /// </summary>
    private LabeledBatch NextBatch(int step, int i)
    {
        long global = ((long)step * settings.GradientAccumulationSteps + i) * World + Rank;
        return train.Batch((int)(global / train.BatchesPerEpoch), (int)(global % train.BatchesPerEpoch));
    }

    /// <summary>The step's gradients summed over ranks (data parallel) and, with float64 sums, rounded once into the parameters' gradients.</summary>
    private void ReduceGradients(GradientSums? sums)
    {
        if (sums is null) settings.Parallel?.ReduceGradients();
        else if (settings.Parallel is { } parallel)
        {
            parallel.ReduceGradients(sums.Sums);
            sums.Clear();
        }
        else sums.ToGradients();
    }

    /// <summary>
    /// torch.nn.utils.clip_grad_norm_ on float32 gradients: the pre-clip norm of the unscaled gradients, and the factor
    /// min(1, max/(norm+1e-6)) / lossScale that the optimizer applies to its float32 copy of each gradient.
    /// </summary>
    private (Tensor Norm, Tensor Multiplier) ClipGradients(double maxNorm, double lossScale)
    {
        // One gradient at a time: a bf16 gradient's float32 copy is freed before the next is made.
        var local = trainable.Select(p => p.Parameter.grad is { } g ? Float32Norm(g) : null).ToList();
        if (local.All(n => n is null) && settings.Parallel is null) return (zeros(1), ones(1));
        // ZeRO-2/3: each rank holds only its own parameters' gradients; the owners' norms are shared so that every rank
        // takes the norm of the same vector as one process (the same float32 rounding, not just the same value).
        var parameterNorms = settings.Parallel?.ParameterNorms(local) ?? stack(local.OfType<Tensor>().ToArray());
        var norm = (parameterNorms.numel() == 0 ? zeros(1) : parameterNorms.norm()) / lossScale;
        var multiplier = maxNorm > 0 ? (maxNorm / (norm + 1e-6)).clamp(max: 1.0) / lossScale : ones_like(norm) / lossScale;
        return (norm, multiplier);
    }

    private static Tensor Float32Norm(Tensor gradient)
    {
        using var scope = NewDisposeScope();
        return gradient.to(ScalarType.Float32).norm().MoveToOuterDisposeScope();
    }
}
