using System.CommandLine;

namespace SharpTune.Cli.Commands;

/// <summary>`--skip-bad-rows`, declared once for every command that reads dataset rows (prepare, train).</summary>
internal static class SkipBadRowsOption
{
    public static Option<bool> Create() =>
        new("--skip-bad-rows") { Description = "Skip malformed rows (counted) instead of stopping at the first." };
}
