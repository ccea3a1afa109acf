using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace SharpTune.Training;

/// <summary>
/// A reward function in any language: the command gets one JSON object per completion on stdin
/// (<c>{"prompt": ..., "completion": ..., "completion_tokens": N, "row": {...the dataset row...}}</c>, one per line) and
/// prints one number per line on stdout, in order (<c>null</c> or <c>nan</c>: does not apply). An existing file is run
/// directly; anything else runs through <c>/bin/sh -c</c> in the config file's folder (e.g. <c>python3 score.py</c>).
/// </summary>
public sealed class RewardCommand(string command, string workingDirectory, TimeSpan timeout) : IRewardFunction
{
    public string Name => "command";

    public double[] Score(IReadOnlyList<RewardInput> inputs)
    {
        var input = new StringBuilder();
        foreach (var i in inputs)
        {
            var line = new JsonObject
            {
                ["prompt"] = i.Prompt, ["completion"] = i.Completion, ["completion_tokens"] = i.CompletionTokens, ["row"] = JsonNode.Parse(i.RowJson),
            };
            input.Append(line.ToJsonString()).Append('\n');
        }
        bool direct = File.Exists(command);
        var start = new ProcessStartInfo(direct ? command : "/bin/sh")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false), StandardOutputEncoding = Encoding.UTF8,
        };
        if (!direct)
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(command);
        }
        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw Fail($"cannot be started ({e.Message}){(direct ? "; is it executable (chmod +x)?" : "")}");
        }
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            process.StandardInput.Write(input.ToString());
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The command exited without reading all of stdin; its exit code and output tell what happened.
        }
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw Fail($"did not finish within {timeout.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s for {inputs.Count} completions (reward_command_timeout)");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            var lastError = stderr.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
            throw Fail($"exited with code {process.ExitCode}{(lastError is null ? "" : $": {lastError}")}");
        }
        var lines = stdout.Result.Split('\n').Select(l => l.Trim()).ToList();
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        if (lines.Count != inputs.Count)
            throw Fail($"printed {lines.Count} line(s) for {inputs.Count} completions; expected one number per line");
        var scores = new double[lines.Count];
        for (int i = 0; i < lines.Count; i++)
        {
            if (lines[i] is "null" or "nan" or "NaN" or "None") scores[i] = double.NaN;
            else if (!double.TryParse(lines[i], NumberStyles.Float, CultureInfo.InvariantCulture, out scores[i]) || !double.IsFinite(scores[i]))
                throw Fail($"line {i + 1} of its output is '{Shorten(lines[i])}'; expected a number (or null)");
        }
        return scores;
    }

    private InvalidInputException Fail(string what) => new($"reward_command {command}: {what}");

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";
}
