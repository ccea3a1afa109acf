namespace SharpTune.Config;

/// <summary>
/// Every problem found in one config, not just the first: the CLI prints them as one line (joined by "; "), a job
/// service lists them one by one in its 400 answer.
/// </summary>
public sealed class ConfigProblemsException(IReadOnlyList<string> problems) : InvalidInputException(string.Join("; ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;

    /// <summary>The problems an exception stands for: its list, or its one message.</summary>
    public static IReadOnlyList<string> Of(InvalidInputException e) => e is ConfigProblemsException p ? p.Problems : [e.Message];
}
