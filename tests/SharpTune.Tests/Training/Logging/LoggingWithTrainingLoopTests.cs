using SharpTune.Config;
using SharpTune.Modeling;
using SharpTune.Tests.Training;
using SharpTune.Training;
using SharpTune.Training.Logging;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training.Logging;

/// <summary>The logging callbacks driven by the real training loop on the tiny llama fixture.</summary>
public sealed class LoggingWithTrainingLoopTests
{
    private sealed class Recorder : ITrainerCallbacks
    {
        public List<StepLog> Logs { get; } = [];
        public List<EvalResult> Evals { get; } = [];
        public List<int> Saves { get; } = [];
        public void OnLog(TrainState state, StepLog log) => Logs.Add(log);
        public void OnEval(TrainState state, EvalResult result) => Evals.Add(result);
        public void OnSave(TrainState state) => Saves.Add(state.Step);
    }

    [Fact]
    public void TrainerFeedsTensorBoardPlotAndProgress()
    {
        var dir = TestPaths.TempDir();
        manual_seed(3);
        using var model = ModelLoader.Load(Path.Combine(TestPaths.Fixtures, "hf-tiny", "llama"), new ModelLoadOptions { DType = ScalarType.Float32 });
        foreach (var p in model.parameters()) p.requires_grad = true;
        var trainable = model.named_parameters().Select(p => new TrainableParameter(p.name, p.parameter, TrainableParameter.DecayApplies(p.name))).ToList();
        var optimizer = Optimizer.Create(OptimizerType.AdamwTorch, trainable, 0.0, 0.9, 0.999, 1e-8);
        var settings = new TrainingLoopSettings
        {
            TotalSteps = 8, GradientAccumulationSteps = 1, Schedule = new LrSchedule(LrSchedulerType.Constant, 1e-2, 0, 8), LoggingSteps = 2, EvalSteps = 4,
        };
        var train = new ListBatchSource(ListBatchSource.CountingRows(16, 12, 64, seed: 1), 2);
        var eval = new ListBatchSource(ListBatchSource.CountingRows(4, 12, 64, seed: 2), 2);
        var recorder = new Recorder();
        var progressText = new StringWriter();
        var plot = new LossPlot(dir, 480, 320);
        string eventFile;
        using (var tensorBoard = new TensorBoardWriter(dir))
        {
            eventFile = tensorBoard.EventFilePath;
            var callbacks = new CompositeCallbacks(recorder, tensorBoard, plot, new ConsoleProgress(progressText, settings.TotalSteps));
            new TrainingLoop(model, trainable, optimizer, new CausalLmObjective(), train, eval, settings, callbacks).Run();
        }

        Assert.Equal([2, 4, 6, 8], recorder.Logs.Select(l => l.Step));
        Assert.Equal([4, 8], recorder.Evals.Select(e => e.Step));
        Assert.Equal([8], recorder.Saves);

        var events = TensorBoardWriterTests.ReadEvents(eventFile);
        Assert.Equal([0L, 2, 4, 4, 6, 8, 8], events.Select(e => e.Step));
        var trainLoss = events.SelectMany(e => e.Values).Where(v => v.Tag == "train/loss").Select(v => v.Value);
        Assert.Equal(recorder.Logs.Select(l => (float)l.Loss), trainLoss);
        var evalLoss = events.SelectMany(e => e.Values).Where(v => v.Tag == "eval/loss").Select(v => v.Value);
        Assert.Equal(recorder.Evals.Select(e => (float)e.Loss), evalLoss);
        Assert.Equal(0.01f, events[1].Values.Single(v => v.Tag == "train/learning_rate").Value);

        // The final save comes after the last log and eval, so the plot holds every point.
        Assert.True(File.Exists(plot.PlotPath));
        Assert.Equal(recorder.Logs.Select(l => ((double)l.Step, l.Loss)), plot.TrainPoints);
        Assert.Equal(recorder.Evals.Select(e => ((double)e.Step, e.Loss)), plot.EvalPoints);
        Assert.Equal((480, 320), (PngImage.Read(plot.PlotPath).Width, PngImage.Read(plot.PlotPath).Height));

        var lines = progressText.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(6, lines.Length);
        Assert.StartsWith("step 2/8 (25%)  epoch 0.25  loss ", lines[0]);
        Assert.StartsWith("eval  step 4/8  loss ", lines[2]);
        Assert.StartsWith("step 8/8 (100%)  epoch 1.00  loss ", lines[4]);
        Assert.EndsWith("eta 00:00", lines[4]);
    }
}
