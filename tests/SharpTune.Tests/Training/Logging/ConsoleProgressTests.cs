using SharpTune.Cli;
using SharpTune.Training;
using SharpTune.Training.Logging;
using Spectre.Console;

namespace SharpTune.Tests.Training.Logging;

public sealed class ConsoleProgressTests
{
    private static readonly Dictionary<string, double> NoMetrics = [];

    [Theory]
    [InlineData(null, "--:--")]
    [InlineData(-1.0, "--:--")]
    [InlineData(0.0, "00:00")]
    [InlineData(0.2, "00:01")]
    [InlineData(59.9999, "01:00")]
    [InlineData(83.0, "01:23")]
    [InlineData(3599.0, "59:59")]
    [InlineData(3723.0, "1:02:03")]
    [InlineData(90061.0, "1d 01:01:01")]
    public void EtaFormatting(double? seconds, string expected) =>
        Assert.Equal(expected, ProgressText.Eta(seconds is { } s ? TimeSpan.FromSeconds(s) : null));

    [Fact]
    public void PlainLinesWithEtaFromMeasuredStepTimes()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, totalSteps: 100, time: time);
        var state = new TrainState();

        time.Advance(TimeSpan.FromSeconds(12)); // 1.2 s/step from the start: 90 steps left → 108 s
        progress.OnLog(state, new StepLog(10, 2.5, 0.75, 3e-4, 1234.4, 5120, 0.25, new Dictionary<string, double> { ["accuracy"] = 0.125 }));
        time.Advance(TimeSpan.FromSeconds(20)); // measured from the first log on: 2 s/step, 80 left → 160 s
        progress.OnLog(state, new StepLog(20, 1.23456, 0.5, 1.5e-5, 987.6, 10240, 0.5, NoMetrics));
        progress.OnEval(state, new EvalResult(20, 2.0, Math.Exp(2.0), 999, new Dictionary<string, double> { ["accuracy"] = 0.5 }));
        time.Advance(TimeSpan.FromHours(1)); // 3620 s over 20 steps = 181 s/step, 70 left → 12670 s
        progress.OnLog(state, new StepLog(30, 1.0, 0.25, 1e-5, 10, 15360, 0.75, NoMetrics));
        time.Advance(TimeSpan.FromSeconds(5));
        progress.OnLog(state, new StepLog(100, 0.5, 0.125, 0, 12, 51200, 2.5, NoMetrics));

        Assert.Equal(
            """
            step  10/100 (10%)  epoch 0.25  loss 2.5000  lr 3.00e-04  grad_norm 0.750  tok/s 1234  accuracy 0.1250  eta 01:48
            step  20/100 (20%)  epoch 0.50  loss 1.2346  lr 1.50e-05  grad_norm 0.500  tok/s 988  eta 02:40
            eval  step  20/100  loss 2.0000  perplexity 7.39  accuracy 0.5000
            step  30/100 (30%)  epoch 0.75  loss 1.0000  lr 1.00e-05  grad_norm 0.250  tok/s 10  eta 3:31:10
            step 100/100 (100%)  epoch 2.50  loss 0.5000  lr 0.00e+00  grad_norm 0.125  tok/s 12  eta 00:00

            """.ReplaceLineEndings(Environment.NewLine),
            output.ToString());
    }

    [Fact]
    public void ResumedRunMeasuresFromItsStartStep()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, totalSteps: 1000, startStep: 500, time: time);
        time.Advance(TimeSpan.FromSeconds(50)); // 10 steps since resume: 5 s/step, 490 left → 2450 s
        progress.OnLog(new TrainState(), new StepLog(510, 1.0, 1.0, 1e-4, 100, 0, 1.02, NoMetrics));
        Assert.EndsWith("eta 40:50" + Environment.NewLine, output.ToString());
        Assert.StartsWith("step  510/1000 (51%)", output.ToString());
    }

    [Fact]
    public void BeginSetsTotalAndRestartsTheClock()
    {
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        var output = new StringWriter();
        var progress = new ConsoleProgress(output, time: time);
        time.Advance(TimeSpan.FromMinutes(5)); // model loading and data preparation: not step time
        progress.Begin(totalSteps: 40, startStep: 20);
        time.Advance(TimeSpan.FromSeconds(8)); // 2 s/step, 16 left → 32 s
        progress.OnLog(new TrainState(), new StepLog(24, 1.0, 1.0, 1e-4, 100, 0, 0.6, NoMetrics));
        progress.OnEval(new TrainState(), new EvalResult(24, 2.0, Math.Exp(2.0), 1, NoMetrics));
        Assert.Equal(
            """
            step 24/40 (60%)  epoch 0.60  loss 1.0000  lr 1.00e-04  grad_norm 1.000  tok/s 100  eta 00:32
            eval  step 24/40  loss 2.0000  perplexity 7.39

            """.ReplaceLineEndings(Environment.NewLine),
            output.ToString());
    }

    [Fact]
    public void CliUsesPlainLinesWhenOutputIsNotTheTerminal()
    {
        var stdout = new StringWriter();
        var console = new CliConsole(stdout, new StringWriter());
        Assert.False(TrainProgress.IsInteractive(console));
        int result = TrainProgress.Run(console, totalSteps: 20, startStep: 0, (callbacks, log) =>
        {
            Assert.Same(stdout, log);
            callbacks.OnLog(new TrainState(), new StepLog(10, 2.5, 0.75, 3e-4, 1234.4, 5120, 0.25, NoMetrics));
            return 7;
        });
        Assert.Equal(7, result);
        Assert.StartsWith("step 10/20 (50%)  epoch 0.25  loss 2.5000  lr 3.00e-04  grad_norm 0.750  tok/s 1234  eta ", stdout.ToString());
    }

    [Fact]
    public void LiveProgressBarShowsCountMetricsEtaAndEvalLines()
    {
        var stdout = new StringWriter();
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.Yes,
            Out = new AnsiConsoleOutput(stdout),
        });
        ansi.Profile.Width = 200;
        var time = new ManualTime(DateTimeOffset.UnixEpoch);
        string result = TrainProgress.RunLive(ansi, (callbacks, log) =>
        {
            callbacks.Begin(totalSteps: 20, startStep: 0);
            log.WriteLine("resumed from checkpoint-0 at step 0");
            log.Write("partial ");
            time.Advance(TimeSpan.FromSeconds(10)); // 1 s/step, 10 left → 10 s
            callbacks.OnLog(new TrainState(), new StepLog(10, 2.5, 0.75, 3e-4, 1234.4, 5120, 0.25, NoMetrics));
            callbacks.OnEval(new TrainState(), new EvalResult(10, 2.0, Math.Exp(2.0), 999, NoMetrics));
            log.Write("line");
            return "done";
        }, time);
        Assert.Equal("done", result);
        var text = stdout.ToString();
        Assert.Contains("eval  step 10/20  loss 2.0000  perplexity 7.39", text);
        Assert.Contains("10/20", text);
        Assert.Contains("50%", text);
        Assert.Contains("resumed from checkpoint-0 at step 0", text);
        Assert.Contains("partial line", text);
        Assert.Contains("eta 00:10", text);
        Assert.Contains("epoch 0.25  loss 2.5000  lr 3.00e-04  grad_norm 0.750  tok/s 1234", text);
    }
}
