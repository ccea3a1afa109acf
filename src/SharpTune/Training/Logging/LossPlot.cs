using System.Text.Json.Nodes;
using ScottPlot;
using SharpTune.Files;

namespace SharpTune.Training.Logging;

/// <summary>
/// Collects train and eval loss and renders <c>&lt;outputDir&gt;/plots/loss.png</c> (ScottPlot). The trainer always saves at
/// its last step, after that step's log and eval, so re-rendering on every save leaves the full curves when training ends
/// and an up-to-date picture at every checkpoint of a long run.
/// </summary>
public sealed class LossPlot(string outputDir, int width = 900, int height = 540) : ITrainerCallbacks
{
    public static readonly Color TrainColor = new(31, 119, 180);
    public static readonly Color EvalColor = new(255, 127, 14);

    private readonly List<(double Step, double Loss)> train = [];
    private readonly List<(double Step, double Loss)> eval = [];
    private Plot? lastRendered;

    public string PlotPath { get; } = Path.Combine(outputDir, "plots", "loss.png");
    public bool RenderOnSave { get; init; } = true;
    public IReadOnlyList<(double Step, double Loss)> TrainPoints => train;
    public IReadOnlyList<(double Step, double Loss)> EvalPoints => eval;

    public void OnLog(TrainState state, StepLog log) => Add(train, log.Step, log.Loss);
    public void OnEval(TrainState state, EvalResult result) => Add(eval, result.Step, result.Loss);

    public void OnSave(TrainState state)
    {
        if (RenderOnSave) Write();
    }

    /// <summary>On resume, reloads the curves so far from metrics.jsonl ("loss" lines are train, "eval_loss" lines eval).</summary>
    public void LoadMetricsLog(string metricsJsonlPath)
    {
        if (!File.Exists(metricsJsonlPath)) return;
        foreach (var line in File.ReadLines(metricsJsonlPath))
        {
            if (string.IsNullOrWhiteSpace(line) || JsonNode.Parse(line) is not JsonObject json || json["step"] is not JsonValue step) continue;
            if (json["loss"] is JsonValue loss) Add(train, step.GetValue<double>(), loss.GetValue<double>());
            if (json["eval_loss"] is JsonValue evalLoss) Add(eval, step.GetValue<double>(), evalLoss.GetValue<double>());
        }
    }

    /// <summary>Renders the PNG (via a temp file, so an existing plot is never left half-written); null when nothing was logged.</summary>
    public string? Write()
    {
        if (train.Count == 0 && eval.Count == 0) return null;
        var plot = new Plot();
        plot.FigureBackground.Color = Colors.White;
        plot.DataBackground.Color = Colors.White;
        if (train.Count > 0)
        {
            var line = plot.Add.Scatter(train.Select(p => p.Step).ToArray(), train.Select(p => p.Loss).ToArray());
            line.Color = TrainColor;
            line.LineWidth = 2;
            line.MarkerSize = train.Count == 1 ? 7 : 0;
            line.LegendText = "train loss";
        }
        if (eval.Count > 0)
        {
            var line = plot.Add.Scatter(eval.Select(p => p.Step).ToArray(), eval.Select(p => p.Loss).ToArray());
            line.Color = EvalColor;
            line.LineWidth = 2;
            line.MarkerSize = 7;
            line.LegendText = "eval loss";
        }
        plot.Title("Loss");
        plot.XLabel("step");
        plot.YLabel("loss");
        plot.ShowLegend(Alignment.UpperRight);

        AtomicFile.Write(PlotPath, stream => stream.Write(plot.GetImageBytes(width, height, ImageFormat.Png)));
        lastRendered = plot;
        return PlotPath;
    }

    /// <summary>Where a data point landed in the last rendered image (tests check real pixels there).</summary>
    internal (float X, float Y) PixelOf(double step, double loss)
    {
        var pixel = (lastRendered ?? throw new InvalidOperationException("nothing rendered yet")).GetPixel(new Coordinates(step, loss));
        return (pixel.X, pixel.Y);
    }

    // Non-finite losses would blow up the axis limits and hide every finite point; metrics.jsonl still has them.
    private static void Add(List<(double, double)> points, double step, double loss)
    {
        if (double.IsFinite(loss)) points.Add((step, loss));
    }
}
