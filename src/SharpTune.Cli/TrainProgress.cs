using SharpTune.Training;
using SharpTune.Training.Logging;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace SharpTune.Cli;

/// <summary>
/// Training progress for the CLI: a live Spectre.Console bar (step/total, epoch, loss, lr, grad norm, tokens/s, ETA)
/// when stdout is a terminal, and the library's plain <see cref="ConsoleProgress"/> lines when it is redirected.
/// Spectre's live display owns the thread while it runs, so training runs inside <see cref="Run{T}"/>; other text the
/// run prints (resume notice, warnings) must go to the <see cref="TextWriter"/> it is handed, which in live mode prints
/// whole lines above the bar instead of tearing through it.
/// </summary>
public static class TrainProgress
{
    // Spectre's task state holds only non-nullable values; a negative span formats as "--:--".
    private static readonly TimeSpan UnknownEta = TimeSpan.FromSeconds(-1);

    /// <summary>Live display only for the real, non-redirected stdout (tests and pipes pass other writers).</summary>
    public static bool IsInteractive(CliConsole console) => !Console.IsOutputRedirected && ReferenceEquals(console.Out, Console.Out);

    /// <summary>For callers that know the step count up front.</summary>
    public static T Run<T>(CliConsole console, int totalSteps, int startStep, Func<IProgressCallbacks, TextWriter, T> train) =>
        Run(console, (progress, lines) =>
        {
            progress.Begin(totalSteps, startStep);
            return train(progress, lines);
        });

    /// <summary>The callee calls <see cref="IProgressCallbacks.Begin"/> once it knows the step count.</summary>
    public static T Run<T>(CliConsole console, Func<IProgressCallbacks, TextWriter, T> train)
    {
        if (!IsInteractive(console)) return train(new ConsoleProgress(console.Out), console.Out);
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(console.Out) });
        return RunLive(ansi, train);
    }

    internal static T RunLive<T>(IAnsiConsole ansi, Func<IProgressCallbacks, TextWriter, T> train, TimeProvider? time = null) =>
        ansi.Progress()
            .AutoClear(false)
            .AutoRefresh(true)
            .Columns(new SpinnerColumn(), new ProgressBarColumn(), new PercentageColumn(), new StepCountColumn(), new EtaColumn(), new MetricsColumn())
            .Start(context =>
            {
                var task = context.AddTask("starting", maxValue: 1);
                task.State.Update<TimeSpan>("eta", _ => UnknownEta);
                var callbacks = new LiveCallbacks(ansi, task, time);
                using var lines = new AboveBarWriter(ansi);
                var result = train(callbacks, lines);
                lines.Flush();
                context.Refresh();
                return result;
            });

    private sealed class LiveCallbacks(IAnsiConsole ansi, ProgressTask task, TimeProvider? time) : IProgressCallbacks
    {
        private int totalSteps;
        private EtaEstimator eta = new(0, 0, time);

        public void Begin(int totalSteps, int startStep)
        {
            this.totalSteps = totalSteps;
            eta = new EtaEstimator(totalSteps, startStep, time);
            task.MaxValue = Math.Max(totalSteps, 1);
            task.Value = startStep;
        }

        public void OnLog(TrainState state, StepLog log)
        {
            task.State.Update<TimeSpan>("eta", _ => eta.Update(log.Step) ?? UnknownEta);
            task.Description = Markup.Escape(ProgressText.Metrics(log));
            task.Value = log.Step;
        }

        // Evaluations are rare and worth keeping in the scrollback, so they print as lines above the live bar.
        public void OnEval(TrainState state, EvalResult result) => ansi.MarkupLine(Markup.Escape(ProgressText.Eval(result, totalSteps)));

        public void OnSave(TrainState state) => task.Value = state.Step;
    }

    /// <summary>One line of metrics, cut with an ellipsis on narrow terminals rather than wrapping the bar.</summary>
    private sealed class MetricsColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Markup(task.Description).Overflow(Overflow.Ellipsis);
    }

    /// <summary>Collects text into whole lines and prints each through Spectre, which redraws the live bar below it.</summary>
    private sealed class AboveBarWriter(IAnsiConsole ansi) : TextWriter
    {
        private readonly System.Text.StringBuilder pending = new();

        public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                ansi.WriteLine(pending.ToString().TrimEnd('\r'));
                pending.Clear();
            }
            else pending.Append(value);
        }

        public override void Flush()
        {
            if (pending.Length == 0) return;
            ansi.WriteLine(pending.ToString());
            pending.Clear();
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) Flush();
            base.Dispose(disposing);
        }
    }

    private sealed class StepCountColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(FormattableString.Invariant($"{task.Value:0}/{task.MaxValue:0}"));
    }

    /// <summary>Our estimate from measured step times, not Spectre's (which would count the start-up as step time).</summary>
    private sealed class EtaColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text("eta " + ProgressText.Eta(task.State.Get<TimeSpan>("eta")), new Style(Color.Blue));
    }
}
