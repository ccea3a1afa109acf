namespace SharpTune.Tests;

/// <summary>Runs the `sharptune` CLI in-process and captures its exit code and output.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = SharpTune.Cli.Program.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }
}
