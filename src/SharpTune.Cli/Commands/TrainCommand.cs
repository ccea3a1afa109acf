using System.CommandLine;
using System.Runtime.InteropServices;
using SharpTune.Config;
using SharpTune.Training;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune train CONFIG [--set key=value ...] [--resume [DIR]]`.</summary>
public static class TrainCommand
{
    /// <summary>Exit codes of a run stopped by a signal: 128 + the signal's number, as a shell reports a process it ended.</summary>
    public const int InterruptedBySigint = 130, InterruptedBySigterm = 143;

    public static Command Create(CliConsole console)
    {
        var config = new Argument<string>("config") { Description = "YAML or JSON config (axolotl keys; see docs/config.md)." };
        var set = new Option<string[]>("--set") { Description = "Override a key: --set learning_rate=1e-4 (repeatable; dotted keys for datasets.0.path).", AllowMultipleArgumentsPerToken = false };
        var resume = new Option<string?>("--resume") { Description = "Resume from a checkpoint folder, or from the newest complete checkpoint in output_dir when no folder is given.", Arity = ArgumentArity.ZeroOrOne };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace an earlier run (finished or interrupted) in output_dir instead of stopping." };
        var device = new Option<string?>("--device") { Description = "Compute device, overriding the config's device key: auto, cpu, cuda or cuda:N." };
        var skipBad = SkipBadRowsOption.Create();
        var command = new Command("train", "Fine-tune or pretrain a model as the config says: data, training loop, checkpoints, export.") { config, set, resume, overwrite, device, skipBad };
        console.Bind(command, parse =>
        {
            var path = parse.GetValue(config)!;
            string[] overrides = [.. parse.GetValue(set) ?? [], .. parse.GetValue(device) is { } d ? new[] { $"device={d}" } : []];
            bool resuming = parse.GetResult(resume) is not null;
            if (resuming && parse.GetValue(overwrite))
                throw new InvalidInputException("--resume and --overwrite contradict each other; pass one of them");
            var trainConfig = ConfigLoader.Load(path, overrides, warning => console.Error.WriteLine($"warning: {warning}"));
            ConfigChecks.CheckFiles(trainConfig, path);
            using var cancel = new CancellationTokenSource();
            int signalExit = 0;
            void OnSignal(PosixSignalContext context)
            {
                // The first SIGINT / SIGTERM checkpoints and stops; a second one ends the process at once (the default action).
                if (Interlocked.CompareExchange(ref signalExit, context.Signal == PosixSignal.SIGTERM ? InterruptedBySigterm : InterruptedBySigint, 0) != 0) return;
                context.Cancel = true;
                console.Error.WriteLine($"{(context.Signal == PosixSignal.SIGTERM ? "SIGTERM" : "interrupted")}: saving a checkpoint of the last finished step, then stopping (send it again to stop at once)");
                cancel.Cancel();
            }
            using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
            using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
            var outcome = TrainProgress.Run(console, (progress, output) => TrainingRecipe.Run(trainConfig, new TrainRequest
            {
                ConfigDir = Path.GetDirectoryName(Path.GetFullPath(path))!, Source = path, Console = output, Warn = warning => console.Error.WriteLine($"warning: {warning}"),
                ResumeFrom = parse.GetValue(resume), Resume = resuming, Overwrite = parse.GetValue(overwrite), SkipBadRows = parse.GetValue(skipBad), Progress = progress,
            }, cancel.Token));
            string loss = outcome.FinalLoss is { } l ? $", final loss {l:F4}" : "";
            if (outcome.Interrupted)
            {
                console.Error.WriteLine($"interrupted at step {outcome.Steps}; resume with --resume (checkpoint {Path.Combine(outcome.OutputDir, Training.Checkpointer.Prefix + outcome.Steps)})");
                return signalExit == 0 ? InterruptedBySigint : signalExit;
            }
            if (outcome.AlreadyFinished)
            {
                console.Out.WriteLine($"done: the run in {outcome.OutputDir} had already finished at step {outcome.Steps}{loss}; nothing to resume");
                return 0;
            }
            console.Out.WriteLine($"done: {outcome.Steps} steps{loss}" +
                                  (outcome.FinalEval is { } e ? $", eval loss {e.Loss:F4}" + (e.Perplexity is { } p ? $" (perplexity {p:F2})" : "") : "") +
                                  $"; saved to {outcome.AdapterDir ?? outcome.OutputDir}" + (outcome.MergedDir is { } m ? $", merged model in {m}" : ""));
            return 0;
        });
        return command;
    }
}
