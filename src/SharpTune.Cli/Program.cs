using System.CommandLine;
using System.CommandLine.Help;
using SharpTune.Cli.Commands;

namespace SharpTune.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Native.OpenMpPolicy.ApplyBeforeTorchLoads();
        Native.HeapPolicy heap;
        try { heap = Native.HeapPolicy.Apply(); }
        catch (InvalidInputException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        using var trimming = heap;
        // Launched as one rank of several (mpirun, srun): only rank 0 prints progress; errors carry the rank.
        var (stdout, stderr) = RankOutput.For(Distributed.LaunchEnvironment.Read(), Console.Out, Console.Error);
        int code = Run(args, stdout, stderr);
        stderr.Flush();
        return code;
    }

    /// <summary>Runs the CLI with the given writers (tests call this in-process).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        // --debug (anywhere on the line) or SHARPTUNE_DEBUG=1: failures print their stack trace after the one-line message.
        bool debug = args.Contains("--debug") || Environment.GetEnvironmentVariable("SHARPTUNE_DEBUG") is "1" or "true";
        args = args.Where(a => a != "--debug").ToArray();
        var console = new CliConsole(stdout, stderr) { Debug = debug };
        // A plain root command named as users type it: RootCommand would take the executable's name (SharpTune.Cli).
        var root = new Command("sharptune", "SharpTune: fine-tune, evaluate and serve Hugging Face LLMs from .NET.")
        {
            new HelpOption(), new VersionOption(),
        };
        // One line per command; each command lives in Commands/<Name>Command.cs.
        root.Subcommands.Add(TrainCommand.Create(console));
        root.Subcommands.Add(LaunchCommand.Create(console));
        root.Subcommands.Add(EnvCommand.Create(console));
        root.Subcommands.Add(InitModelCommand.Create(console));
        root.Subcommands.Add(ScoreCommand.Create(console));
        root.Subcommands.Add(GenerateCommand.Create(console));
        root.Subcommands.Add(MergeCommand.Create(console));
        root.Subcommands.Add(ValidateCommand.Create(console));
        root.Subcommands.Add(ChatCommand.Create(console));
        root.Subcommands.Add(ServeCommand.Create(console));
        root.Subcommands.Add(JobsCommand.Create(console));
        root.Subcommands.Add(EvalCommand.Create(console));
        root.Subcommands.Add(PrepareCommand.Create(console));
        root.Subcommands.Add(TokenizeCommand.Create(console));
        root.Subcommands.Add(DownloadCommand.Create(console));
        root.Subcommands.Add(PushCommand.Create(console));
        root.Subcommands.Add(ExportCommand.Create(console));
        root.Subcommands.Add(PlanCommand.Create(console));
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            // Bad usage (missing required option, unknown option, wrong value type): exit 2 as DESIGN.md's contract says.
            foreach (var error in parse.Errors) stderr.WriteLine($"error: {error.Message}");
            stderr.WriteLine("Run with --help for usage.");
            return 2;
        }
        return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
    }
}
