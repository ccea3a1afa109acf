using System.Globalization;
using System.Text.Json.Nodes;

namespace SharpTune.Training;

/// <summary>metrics.jsonl (one JSON object per logging step or evaluation) plus a readable console line.</summary>
public sealed class MetricsLog(string outputDir, TextWriter console) : ITrainerCallbacks
{
    private readonly string path = Path.Combine(outputDir, "metrics.jsonl");

    public Action<TrainState>? SaveCheckpoint { get; init; }

    /// <summary>On resume, drops lines past the checkpoint's step so the file reads as one uninterrupted run.</summary>
    public void TruncateAfter(int step)
    {
        if (!File.Exists(path)) return;
        var kept = File.ReadAllLines(path).Where(line => JsonNode.Parse(line)?["step"]?.GetValue<int>() <= step).ToList();
        File.WriteAllLines(path, kept);
    }

    public void OnLog(TrainState state, StepLog log)
    {
        var json = new JsonObject
        {
            ["step"] = log.Step, ["epoch"] = Math.Round(log.Epoch, 4), ["loss"] = log.Loss, ["grad_norm"] = log.GradNorm,
            ["learning_rate"] = log.LearningRate, ["tokens_per_second"] = Math.Round(log.TokensPerSecond, 1),
            ["tokens_seen"] = log.TokensSeen, ["rss_mb"] = Math.Round(ProcessMemory.ResidentBytes() / 1048576.0, 1),
        };
        foreach (var (name, value) in log.Metrics) json[name] = value;
        Append(json);
        var extra = string.Concat(log.Metrics.Select(m => $"  {m.Key} {m.Value:F4}"));
        console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"step {log.Step,5}  loss {log.Loss:F4}  grad_norm {log.GradNorm:F3}  lr {log.LearningRate:E2}  {log.TokensPerSecond:F0} tok/s{extra}"));
    }

    public void OnEval(TrainState state, EvalResult result)
    {
        var json = new JsonObject { ["step"] = result.Step, ["eval_loss"] = result.Loss };
        if (result.Perplexity is { } perplexity) json["eval_perplexity"] = perplexity;
        json["eval_tokens"] = result.Tokens;
        foreach (var (name, value) in result.Metrics) json["eval_" + name] = value;
        Append(json);
        console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"eval  {result.Step,5}  loss {result.Loss:F4}{(result.Perplexity is { } p ? $"  perplexity {p:F2}" : "")}"));
    }

    public void OnSave(TrainState state) => SaveCheckpoint?.Invoke(state);

    private void Append(JsonObject json)
    {
        Directory.CreateDirectory(outputDir);
        File.AppendAllText(path, json.ToJsonString() + "\n");
    }
}

/// <summary>Resident and peak memory of this process from /proc (Linux).</summary>
public static class ProcessMemory
{
    public static long ResidentBytes() => Read("VmRSS:");
    public static long PeakResidentBytes() => Read("VmHWM:");

    private static long Read(string field)
    {
        const string status = "/proc/self/status";
        if (!File.Exists(status)) return 0;
        var line = File.ReadLines(status).FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
        return line is null ? 0 : long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }
}
