using System.Globalization;
using System.Text.Json.Nodes;

namespace SharpTune.Training;

/// <summary>
/// Sampled GRPO completions with their rewards: printed and appended to output_dir/completions.jsonl at every
/// evaluation (the eval prompts' latest samples), and at every logging step with trl.log_completions (the training ones).
/// </summary>
public sealed class GrpoCompletionLog(GrpoRolloutSource train, GrpoRolloutSource? eval, bool logTraining, string outputDir, TextWriter console) : ITrainerCallbacks
{
    public void OnLog(TrainState state, StepLog log)
    {
        if (logTraining) Write("train", state.Step, train.LastSamples);
    }

    public void OnEval(TrainState state, EvalResult result)
    {
        if (eval is not null) Write("eval", state.Step, eval.LastSamples);
    }

    public void OnSave(TrainState state) { }

    private void Write(string split, int step, IReadOnlyList<CompletionSample> samples)
    {
        if (samples.Count == 0) return;
        Directory.CreateDirectory(outputDir);
        var lines = new System.Text.StringBuilder();
        foreach (var s in samples)
        {
            console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {split} completion @ step {step}: {ReportText.OneLine(s.Prompt)} → {ReportText.OneLine(s.Completion)}  reward {s.Reward:0.###}  advantage {s.Advantage:0.###}"));
            var json = new JsonObject
            {
                ["step"] = step, ["split"] = split, ["prompt"] = s.Prompt, ["completion"] = s.Completion, ["reward"] = s.Reward, ["advantage"] = s.Advantage,
                ["rewards"] = new JsonObject(s.Rewards.Select(r => KeyValuePair.Create(r.Key, (JsonNode?)(double.IsNaN(r.Value) ? null : r.Value)))),
            };
            lines.Append(json.ToJsonString()).Append('\n');
        }
        File.AppendAllText(Path.Combine(outputDir, "completions.jsonl"), lines.ToString());
    }
}
