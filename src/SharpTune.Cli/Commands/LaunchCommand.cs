using System.CommandLine;
using System.Diagnostics;
using SharpTune.Distributed;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune launch --nproc N [--hosts h1:4,h2:4 | --hostfile F] CONFIG [--set …] [--resume [DIR]]`: mpirun for the user.</summary>
public static class LaunchCommand
{
    public static Command Create(CliConsole console)
    {
        var config = new Argument<string>("config") { Description = "YAML or JSON config, as for train." };
        var nproc = new Option<int>("--nproc") { Description = "Ranks (processes) in all.", Required = true };
        var hosts = new Option<string?>("--hosts") { Description = "Hosts and their slots: node1:4,node2:4 (default: this machine)." };
        var hostfile = new Option<string?>("--hostfile") { Description = "An OpenMPI hostfile instead of --hosts." };
        var set = new Option<string[]>("--set") { Description = "Override a key, as for train (repeatable)." };
        var resume = new Option<string?>("--resume") { Description = "Resume, as for train.", Arity = ArgumentArity.ZeroOrOne };
        var mpirun = new Option<string>("--mpirun") { Description = "The mpirun to call.", DefaultValueFactory = _ => "mpirun" };
        var command = new Command("launch", "Train on several processes or nodes: runs `mpirun … sharptune train CONFIG` (docs/distributed.md).")
            { config, nproc, hosts, hostfile, set, resume, mpirun };
        console.Bind(command, parse =>
        {
            var args = new List<string> { Path.GetFullPath(parse.GetValue(config)!) };
            foreach (var s in parse.GetValue(set) ?? []) args.AddRange(["--set", s]);
            if (parse.GetResult(resume) is not null) { args.Add("--resume"); if (parse.GetValue(resume) is { } dir) args.Add(dir); }
            var self = Environment.ProcessPath ?? throw new InvalidOperationException("cannot tell the sharptune executable's path");
            var start = MpirunCommand.Build(parse.GetValue(nproc), parse.GetValue(hosts), parse.GetValue(hostfile), self, args, parse.GetValue(mpirun)!);
            console.Out.WriteLine($"launch: {start.FileName} {string.Join(' ', start.ArgumentList)}");
            Process process;
            try { process = Process.Start(start)!; }
            catch (System.ComponentModel.Win32Exception) { throw new InvalidInputException($"--mpirun: {start.FileName} cannot be run; install OpenMPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev)"); }
            using (process)
            {
                process.WaitForExit();
                return process.ExitCode;
            }
        });
        return command;
    }
}
