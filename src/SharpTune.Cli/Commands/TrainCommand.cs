using System.CommandLine;
using SharpTune.Config;
using SharpTune.Training;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune train CONFIG [--set key=value ...] [--resume [DIR]]`.</summary>
public static class TrainCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Argument<string>("config") { Description = "YAML or JSON config (axolotl keys; see docs/config.md)." };
        var set = new Option<string[]>("--set") { Description = "Override a key: --set learning_rate=1e-4 (repeatable; dotted keys for datasets.0.path).", AllowMultipleArgumentsPerToken = false };
        var resume = new Option<string?>("--resume") { Description = "Resume from a checkpoint folder, or from the newest checkpoint in output_dir when no folder is given.", Arity = ArgumentArity.ZeroOrOne };
        var device = new Option<string?>("--device") { Description = "Compute device, overriding the config's device key: auto, cpu, cuda or cuda:N." };
        var command = new Command("train", "Fine-tune or pretrain a model as the config says: data, training loop, checkpoints, export.") { config, set, resume, device };
        console.Bind(command, parse =>
        {
            var path = parse.GetValue(config)!;
            string[] overrides = [.. parse.GetValue(set) ?? [], .. parse.GetValue(device) is { } d ? new[] { $"device={d}" } : []];
            var trainConfig = ConfigLoader.Load(path, overrides, warning => console.Error.WriteLine($"warning: {warning}"));
            ConfigChecks.CheckFiles(trainConfig, path);
            using var cancel = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) =>
            {
                e.Cancel = true;
                console.Error.WriteLine("interrupted: saving a checkpoint, then stopping (Ctrl-C again to abort)");
                cancel.Cancel();
            };
            Console.CancelKeyPress += onCancel;
            try
            {
                var outcome = TrainProgress.Run(console, (progress, output) => TrainingJob.Run(trainConfig, Path.GetDirectoryName(Path.GetFullPath(path))!, output,
                    warning => console.Error.WriteLine($"warning: {warning}"), parse.GetValue(resume), parse.GetResult(resume) is not null, cancel.Token, progress));
                console.Out.WriteLine($"done: {outcome.Steps} steps, final loss {outcome.FinalLoss:F4}" +
                                      (outcome.FinalEval is { } e ? $", eval loss {e.Loss:F4}" + (e.Perplexity is { } p ? $" (perplexity {p:F2})" : "") : "") +
                                      $"; saved to {outcome.AdapterDir ?? outcome.OutputDir}" + (outcome.MergedDir is { } m ? $", merged model in {m}" : ""));
                return 0;
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
        });
        return command;
    }
}
