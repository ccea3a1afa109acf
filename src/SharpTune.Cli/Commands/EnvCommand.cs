using System.CommandLine;
using static TorchSharp.torch;

namespace SharpTune.Cli.Commands;

/// <summary>`sharptune env`: what the native tensor library and the machine offer.</summary>
public static class EnvCommand
{
    public static Command Create(CliConsole console)
    {
        var command = new Command("env", "Print the libtorch build, device and CPU features SharpTune sees.");
        console.Bind(command, _ =>
        {
            console.Out.WriteLine($"sharptune      {typeof(InvalidInputException).Assembly.GetName().Version}");
            console.Out.WriteLine($"torchsharp     {typeof(TorchSharp.torch).Assembly.GetName().Version}");
            console.Out.WriteLine($"cuda           {(cuda.is_available() ? $"available ({cuda.device_count()} device(s))" : "not available")}");
            console.Out.WriteLine($"threads        {get_num_threads()}");
            console.Out.WriteLine($"cpu bf16 units {(Native.CpuFeatures.HasBf16Units() ? "yes" : "no")}");
            return 0;
        });
        return command;
    }
}
