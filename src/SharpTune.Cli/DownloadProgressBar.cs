using SharpTune.Hub;
using Spectre.Console;

namespace SharpTune.Cli;

/// <summary>
/// One Spectre.Console bar for a whole download (bytes, rate, ETA) when stdout is a terminal; the library's plain start/end
/// lines otherwise. The downloader reports from several threads; Spectre's task counters are thread-safe.
/// </summary>
public static class DownloadProgressBar
{
    public static T Run<T>(CliConsole console, Func<IDownloadProgress, T> download)
    {
        if (!TrainProgress.IsInteractive(console)) return download(new TextDownloadProgress(console.Out));
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(console.Out) });
        return ansi.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(context => download(new Bar(context)));
    }

    private sealed class Bar(ProgressContext context) : IDownloadProgress
    {
        private ProgressTask? task;

        public void Start(string what, int files, long bytes) =>
            task = context.AddTask($"{Markup.Escape(what)} ({files} file(s))", maxValue: Math.Max(bytes, 1));

        public void Advance(long bytes) => task?.Increment(bytes);

        public void Finish()
        {
            if (task is null) return;
            task.Value = task.MaxValue;
            task.StopTask();
        }
    }
}
