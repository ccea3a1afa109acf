using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>The training loop's small pieces on hand-made figures: the logging window, the loss watchdog, early stopping.</summary>
public sealed class LoopPiecesTests
{
    [Fact]
    public void TheWatchdogTripsOnlyAfterPatienceLoggingStepsInARowAboveTheThreshold()
    {
        var watchdog = new LossWatchdog(threshold: 2.0, patience: 3);
        Assert.Equal([false, false, false, false, false, true], new[] { 3.0, 2.5, 1.0, 4.0, 2.1, 9.0 }.Select(watchdog.Trips));
        var stopped = watchdog.Stopped(9.0, 12);
        Assert.Equal(RunStoppedException.LossWatchdogExitCode, stopped.ExitCode);
        Assert.Equal("loss watchdog: loss 9.0000 stayed above loss_watchdog_threshold 2 for 3 logging steps; stopped with a checkpoint at step 12", stopped.Message);
        Assert.False(new LossWatchdog(threshold: null, patience: 1).Trips(1e9));
    }

    [Fact]
    public void EarlyStoppingKeepsTheBestEvaluationAndStopsAfterPatienceEvaluationsWithoutALowerLoss()
    {
        var state = new TrainState();
        var stopping = new EarlyStopping(patience: 2);
        bool Eval(int step, double loss)
        {
            state.Step = step;
            return stopping.Stops(state, new EvalResult(step, loss, null, 10, new Dictionary<string, double>()));
        }
        Assert.False(Eval(2, 1.0));
        Assert.False(Eval(4, 0.9));
        Assert.False(Eval(6, 0.95));
        Assert.Equal((0.9, 4, 1), (state.BestEvalLoss!.Value, state.BestEvalStep!.Value, state.EvalsWithoutImprovement));
        Assert.True(Eval(8, 0.9));
        Assert.False(new EarlyStopping(patience: null).Stops(state, new EvalResult(10, 5.0, null, 10, new Dictionary<string, double>())));
    }

    [Fact]
    public void TheLoggingWindowAveragesLossAndMetricsOverItsStepsAndStartsAgain()
    {
        using var window = new LoggingWindow(null, () => new Dictionary<string, double> { ["gpu_mem_used_gib"] = 1.5 }, tokensSeen: 100);
        // Step 1: two micro-batches (accumulation 2); step 2: two more. Losses are already divided by the step's tokens.
        window.AddMicroBatch(tensor(0.25f), new Dictionary<string, Tensor> { ["aux_loss"] = tensor(0.5f) }, 2);
        window.AddMicroBatch(tensor(0.75f), new Dictionary<string, Tensor> { ["aux_loss"] = tensor(1.5f) }, 2);
        window.EndStep(tensor(4f));
        window.AddMicroBatch(tensor(1.0f), new Dictionary<string, Tensor> { ["aux_loss"] = tensor(2f) }, 2);
        window.AddMicroBatch(tensor(2.0f), new Dictionary<string, Tensor> { ["aux_loss"] = tensor(4f) }, 2);
        window.EndStep(tensor(3f));
        var log = window.Close(step: 2, tokensSeen: 164, learningRate: 1e-3, epoch: 0.5);
        Assert.Equal((2, 2.0, 3.0, 1e-3, 164L, 0.5), (log.Step, log.Loss, log.GradNorm, log.LearningRate, log.TokensSeen, log.Epoch));
        Assert.Equal(2.0, log.Metrics["aux_loss"], 6);   // (0.25 + 0.75 + 1 + 2) / 2 steps
        Assert.Equal(1.5, log.Metrics["gpu_mem_used_gib"]);
        Assert.True(log.TokensPerSecond > 0);

        window.AddMicroBatch(tensor(0.5f), new Dictionary<string, Tensor>(), 1);
        window.EndStep(tensor(1f));
        var next = window.Close(step: 3, tokensSeen: 200, learningRate: 1e-3, epoch: 0.75);
        Assert.Equal((0.5, 1.0), (next.Loss, next.GradNorm));
        Assert.False(next.Metrics.ContainsKey("aux_loss"));
    }
}
