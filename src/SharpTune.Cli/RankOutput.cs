using System.Text;
using SharpTune.Distributed;

namespace SharpTune.Cli;

/// <summary>
/// Console streams of one rank of a multi-process run: rank 0 prints as a single process does; the others print only
/// errors and warnings, and every rank's stderr lines carry "rank N: " so a failure names the rank it came from.
/// </summary>
public static class RankOutput
{
    public static (TextWriter Out, TextWriter Error) For(LaunchEnvironment launch, TextWriter stdout, TextWriter stderr) =>
        !launch.IsDistributed ? (stdout, stderr) : (launch.Rank == 0 ? stdout : TextWriter.Null, new LinePrefixWriter(stderr, $"rank {launch.Rank}: "));

    /// <summary>Writes whole lines, each with the prefix.</summary>
    private sealed class LinePrefixWriter(TextWriter inner, string prefix) : TextWriter
    {
        private readonly StringBuilder line = new();
        public override Encoding Encoding => inner.Encoding;

        public override void Write(char value)
        {
            if (value == '\n')
            {
                inner.WriteLine(prefix + line);
                inner.Flush();
                line.Clear();
            }
            else if (value != '\r') line.Append(value);
        }

        public override void Flush()
        {
            if (line.Length > 0) { inner.Write(prefix + line); line.Clear(); }
            inner.Flush();
        }
    }
}
