using System.Text.Json.Nodes;
using SharpTune.Modeling;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// checkpoint-STEP folders: weights (adapter or model), optimizer state, scheduler, trainer state, RNG and the
/// config. Written into a temporary folder and renamed, so a checkpoint is either complete or absent.
/// </summary>
public sealed class Checkpointer(string outputDir, int? saveTotalLimit)
{
    public const string Prefix = "checkpoint-";

    /// <param name="writeWeights">writes the model or adapter files into the folder it is given.</param>
    /// <param name="writeState">writes state of the batch source (GRPO's kept rollouts) into the folder, when it has any.</param>
    public string Save(TrainState state, Optimizer optimizer, LrSchedule schedule, Action<string> writeWeights, string? configText, Action<string>? writeState = null)
    {
        Directory.CreateDirectory(outputDir);
        var final = Path.Combine(outputDir, Prefix + state.Step);
        var temp = Path.Combine(outputDir, $".{Prefix}{state.Step}.tmp-{Environment.ProcessId}");
        if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        Directory.CreateDirectory(temp);
        writeWeights(temp);
        SafeTensorsWriter.Save(Path.Combine(temp, "optimizer.safetensors"), optimizer.StateTensors.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        ModelIO.WriteJsonAtomic(Path.Combine(temp, "optimizer.json"), new JsonObject { ["type"] = optimizer.GetType().Name, ["step_count"] = optimizer.StepCount });
        ModelIO.WriteJsonAtomic(Path.Combine(temp, "scheduler.json"), new JsonObject
        {
            ["kind"] = schedule.Kind, ["last_step"] = state.Step, ["last_lr"] = schedule.At(Math.Max(state.Step - 1, 0)),
            ["warmup_steps"] = schedule.WarmupSteps, ["total_steps"] = schedule.TotalSteps,
        });
        ModelIO.WriteJsonAtomic(Path.Combine(temp, "trainer_state.json"), new JsonObject
        {
            ["global_step"] = state.Step,
            ["tokens_seen"] = state.TokensSeen,
            ["best_metric"] = state.BestEvalLoss,
            ["best_model_checkpoint"] = state.BestEvalStep is { } best ? Path.Combine(outputDir, Prefix + best) : null,
            ["evals_without_improvement"] = state.EvalsWithoutImprovement,
            ["loss_scale"] = state.LossScaler?.Scale,
            ["loss_scale_clean_steps"] = state.LossScaler?.CleanSteps,
            ["log_history"] = new JsonArray(state.LogHistory.Select(entry => (JsonNode)new JsonObject(entry.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)))).ToArray()),
        });
        using (var rng = get_rng_state()) SafeTensorsWriter.Save(Path.Combine(temp, "rng_state.safetensors"), [KeyValuePair.Create("cpu", rng)]);
        if (configText is not null) File.WriteAllText(Path.Combine(temp, "config.yaml"), configText);
        writeState?.Invoke(temp);
        if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
        Directory.Move(temp, final);
        RotateOld(state.BestEvalStep);
        return final;
    }

    /// <summary>Restores optimizer, trainer state and RNG; weights are loaded by the caller's loadWeights.</summary>
    /// <param name="loadOptimizer">loads the optimizer state instead of the single optimizer.safetensors (ZeRO: this rank's parameters from every shard).</param>
    public static void Restore(string checkpointDir, TrainState state, Optimizer optimizer, Action<string> loadWeights, Action<string>? readState = null, Action<string>? loadOptimizer = null)
    {
        var stateFile = Path.Combine(checkpointDir, "trainer_state.json");
        if (!File.Exists(stateFile)) throw new InvalidInputException($"{checkpointDir}: not a checkpoint (no trainer_state.json)");
        loadWeights(checkpointDir);
        var json = JsonNode.Parse(File.ReadAllText(stateFile))!.AsObject();
        state.Step = json["global_step"]!.GetValue<int>();
        state.TokensSeen = json["tokens_seen"]!.GetValue<long>();
        state.BestEvalLoss = json["best_metric"]?.GetValue<double>();
        state.BestEvalStep = json["best_model_checkpoint"]?.GetValue<string>() is { } best && int.TryParse(Path.GetFileName(best)[Prefix.Length..], out var bestStep) ? bestStep : null;
        state.EvalsWithoutImprovement = json["evals_without_improvement"]!.GetValue<int>();
        if (state.LossScaler is { } scaler && json["loss_scale"]?.GetValue<double>() is { } scale)
            scaler.Restore(scale, json["loss_scale_clean_steps"]?.GetValue<int>() ?? 0);
        state.LogHistory.Clear();
        foreach (var entry in json["log_history"]!.AsArray())
            state.LogHistory.Add(entry!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<double>()));
        if (loadOptimizer is not null) loadOptimizer(checkpointDir);
        else
        {
            var optimizerJson = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpointDir, "optimizer.json")))!.AsObject();
            using var optimizerState = SafeTensorsCheckpoint.Open(Path.Combine(checkpointDir, "optimizer.safetensors"));
            optimizer.LoadState(optimizerState.Names.Select(n => KeyValuePair.Create(n, optimizerState.Load(n))).ToList(), optimizerJson["step_count"]!.GetValue<long>());
        }
        using var rngFile = SafeTensorsCheckpoint.Open(Path.Combine(checkpointDir, "rng_state.safetensors"));
        using var rng = rngFile.Load("cpu");
        set_rng_state(rng);
        readState?.Invoke(checkpointDir);
    }

    /// <summary>The checkpoint with the highest step in the output folder, or null.</summary>
    public static string? Latest(string outputDir) =>
        Directory.Exists(outputDir)
            ? Directory.GetDirectories(outputDir, Prefix + "*")
                .Select(d => (Dir: d, Step: int.TryParse(Path.GetFileName(d)[Prefix.Length..], out var s) ? s : -1))
                .Where(c => c.Step >= 0 && File.Exists(Path.Combine(c.Dir, "trainer_state.json")))
                .OrderByDescending(c => c.Step).Select(c => c.Dir).FirstOrDefault()
            : null;

    /// <summary>Keeps the newest save_total_limit checkpoints and, as transformers does, the best one by eval loss.</summary>
    private void RotateOld(int? bestStep)
    {
        if (saveTotalLimit is not { } limit || limit < 1) return;
        var old = Directory.GetDirectories(outputDir, Prefix + "*")
            .Select(d => (Dir: d, Step: int.TryParse(Path.GetFileName(d)[Prefix.Length..], out var s) ? s : -1))
            .Where(c => c.Step >= 0).OrderByDescending(c => c.Step).Skip(limit).Where(c => c.Step != bestStep);
        foreach (var (dir, _) in old) Directory.Delete(dir, recursive: true);
    }
}
