namespace SharpTune.Tests.Config;

/// <summary>Writes configs to temp files and runs the CLI in-process.</summary>
internal static class ConfigTestKit
{
    public const string Minimal = """
        base_model: org/model
        datasets:
          - path: data.jsonl
            type: alpaca

        """;

    public static string Write(string text, string name = "config.yaml")
    {
        string path = Path.Combine(TestPaths.TempDir(), name);
        File.WriteAllText(path, text);
        return path;
    }

    public static (int Exit, string Out, string Err) RunCli(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int exit = SharpTune.Cli.Program.Run(args, stdout, stderr);
        return (exit, stdout.ToString(), stderr.ToString());
    }
}
