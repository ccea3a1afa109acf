namespace SharpTune.Training;

/// <summary>Sample prompts and completions as the console reports print them.</summary>
internal static class ReportText
{
    /// <summary>The text on one line: its non-empty lines, trimmed, joined by " | ".</summary>
    internal static string OneLine(string text) => string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
