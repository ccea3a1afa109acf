using SharpTune.Training;
using SharpTune.Training.Logging;

namespace SharpTune.Tests.Training.Logging;

public sealed class LossPlotTests
{
    private static readonly Dictionary<string, double> NoMetrics = [];

    private static double TrainLoss(int step) => 3.0 * Math.Exp(-step / 12.0) + 0.5;
    private static double EvalLoss(int step) => 3.2 * Math.Exp(-step / 15.0) + 0.8;

    [Fact]
    public void WritesPngWithTrainAndEvalCurvesAtTheirDataPoints()
    {
        var dir = TestPaths.TempDir();
        var plot = new LossPlot(dir, width: 640, height: 400);
        var state = new TrainState();
        for (int step = 1; step <= 40; step++)
        {
            plot.OnLog(state, new StepLog(step, TrainLoss(step), 1, 1e-4, 100, step * 64, step / 40.0, NoMetrics));
            if (step % 10 == 0) plot.OnEval(state, new EvalResult(step, EvalLoss(step), Math.Exp(EvalLoss(step)), 128, NoMetrics));
        }
        state.Step = 40;
        plot.OnSave(state);

        Assert.Equal(Path.Combine(dir, "plots", "loss.png"), plot.PlotPath);
        Assert.Equal(PngImage.Signature, File.ReadAllBytes(plot.PlotPath)[..8]);
        Assert.False(File.Exists(plot.PlotPath + ".tmp.png"));
        var image = PngImage.Read(plot.PlotPath);
        Assert.Equal(640, image.Width);
        Assert.Equal(400, image.Height);
        Assert.Equal(((byte)255, (byte)255, (byte)255), image.At(1, 1));

        // Train line vertices (2 px wide) and eval markers carry their series colours exactly at their pixel positions.
        foreach (int step in new[] { 5, 20, 33 })
        {
            var (x, y) = plot.PixelOf(step, TrainLoss(step));
            AssertNear(LossPlot.TrainColor, image, (int)Math.Round(x), (int)Math.Round(y));
        }
        foreach (int step in new[] { 10, 20, 30 })
        {
            var (x, y) = plot.PixelOf(step, EvalLoss(step));
            AssertNear(LossPlot.EvalColor, image, (int)Math.Round(x), (int)Math.Round(y));
        }
        // Between the curves (data area, away from both lines) stays background.
        var (mx, my) = plot.PixelOf(25, (TrainLoss(25) + EvalLoss(25)) / 2 - 0.15);
        Assert.Equal(((byte)255, (byte)255, (byte)255), image.At((int)mx, (int)my));
        Assert.True(CountNear(image, LossPlot.TrainColor) > 300, "train curve pixels");
        Assert.True(CountNear(image, LossPlot.EvalColor) > 100, "eval curve pixels");
    }

    [Fact]
    public void NothingLoggedWritesNothingAndNonFiniteLossesAreSkipped()
    {
        var dir = TestPaths.TempDir();
        var plot = new LossPlot(dir);
        Assert.Null(plot.Write());
        Assert.False(File.Exists(plot.PlotPath));
        plot.OnLog(new TrainState(), new StepLog(1, double.NaN, 1, 1e-4, 1, 1, 0, NoMetrics));
        plot.OnLog(new TrainState(), new StepLog(2, 1.5, 1, 1e-4, 1, 1, 0, NoMetrics));
        Assert.Equal([(2.0, 1.5)], plot.TrainPoints);
        Assert.Equal(plot.PlotPath, plot.Write());
        var image = PngImage.Read(plot.PlotPath);
        Assert.Equal((900, 540), (image.Width, image.Height));
    }

    [Fact]
    public void ResumeReloadsCurvesFromMetricsLog()
    {
        var dir = TestPaths.TempDir();
        var metrics = Path.Combine(dir, "metrics.jsonl");
        File.WriteAllLines(metrics,
        [
            """{"step":1,"epoch":0.1,"loss":2.5,"grad_norm":1.0}""",
            """{"step":2,"epoch":0.2,"loss":2.25,"grad_norm":1.0}""",
            """{"step":2,"eval_loss":2.75,"eval_perplexity":15.6}""",
        ]);
        var plot = new LossPlot(dir);
        plot.LoadMetricsLog(metrics);
        plot.OnLog(new TrainState(), new StepLog(3, 2.0, 1, 1e-4, 1, 1, 0.3, NoMetrics));
        Assert.Equal([(1.0, 2.5), (2.0, 2.25), (3.0, 2.0)], plot.TrainPoints);
        Assert.Equal([(2.0, 2.75)], plot.EvalPoints);
    }

    private static void AssertNear(ScottPlot.Color expected, PngImage image, int x, int y)
    {
        var (r, g, b) = image.At(x, y);
        Assert.True(Math.Abs(r - expected.R) <= 24 && Math.Abs(g - expected.G) <= 24 && Math.Abs(b - expected.B) <= 24,
            $"pixel ({x},{y}) is ({r},{g},{b}), expected near ({expected.R},{expected.G},{expected.B})");
    }

    private static int CountNear(PngImage image, ScottPlot.Color color)
    {
        int count = 0;
        for (int y = 0; y < image.Height; y++)
            for (int x = 0; x < image.Width; x++)
            {
                var (r, g, b) = image.At(x, y);
                if (Math.Abs(r - color.R) <= 8 && Math.Abs(g - color.G) <= 8 && Math.Abs(b - color.B) <= 8) count++;
            }
        return count;
    }
}
