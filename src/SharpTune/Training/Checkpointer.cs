using System.Text.Json.Nodes;
using SharpTune.Files;
using SharpTune.Modeling;
using SharpTune.SafeTensors;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// checkpoint-STEP folders: weights (adapter or model), optimizer state, scheduler, trainer state, RNG and the
/// config. Written into a temporary folder and renamed, so a checkpoint is either complete or absent; old ones are renamed
/// aside before they are deleted, for the same reason.
/// </summary>
public sealed class Checkpointer(string outputDir, int? saveTotalLimit)
{
    public const string Prefix = "checkpoint-";

    /// <param name="writeWeights">writes the model or adapter files into the folder it is given.</param>
    /// <param name="writeState">writes state of the batch source (GRPO's kept rollouts) into the folder, when it has any.</param>
    public string Save(TrainState state, Optimizer optimizer, LrSchedule schedule, Action<string> writeWeights, string? configText, Action<string>? writeState = null)
    {
        // A checkpoint folder is complete or absent; an older save of the same step stays whole until the new one replaces it.
        var final = Path.Combine(outputDir, Prefix + state.Step);
        AtomicFolder.Replace(final, temp => Write(temp, state, optimizer, schedule, writeWeights, configText, writeState));
        RotateOld(state.BestEvalStep);
        return final;
    }

    private void Write(string temp, TrainState state, Optimizer optimizer, LrSchedule schedule, Action<string> writeWeights, string? configText, Action<string>? writeState)
    {
        writeWeights(temp);
        SafeTensorsWriter.Save(Path.Combine(temp, "optimizer.safetensors"), optimizer.StateTensors.OrderBy(kv => kv.Key, StringComparer.Ordinal));
        ModelIO.WriteJsonAtomic(Path.Combine(temp, "optimizer.json"), new JsonObject { ["type"] = optimizer.GetType().Name, ["step_count"] = optimizer.StepCount });
        ModelIO.WriteJsonAtomic(Path.Combine(temp, "scheduler.json"), new JsonObject
        {
            ["kind"] = schedule.Name, ["last_step"] = state.Step, ["last_lr"] = schedule.At(Math.Max(state.Step - 1, 0)),
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
    }

    /// <summary>
    /// Removes the hidden save and deletion folders (.checkpoint-N.tmp-…-PID, .checkpoint-N.old-…-PID) that killed
    /// processes left in <paramref name="outputDir"/> (a live process's, e.g. another run saving into the same folder,
    /// are left alone). Returns how many were removed.
    /// </summary>
    public static int RemoveStale(string outputDir) => AtomicFolder.RemoveStale(outputDir, Prefix);

    /// <summary>
    /// What is wrong with a checkpoint folder (a missing or unreadable file, named), or null when every file a resume
    /// reads is there and parses: trainer_state.json, optimizer.json, scheduler.json, the weights and every .safetensors header.
    /// </summary>
    public static string? Problem(string checkpointDir)
    {
        foreach (var name in new[] { "trainer_state.json", "optimizer.json", "scheduler.json" })
        {
            string path = Path.Combine(checkpointDir, name);
            if (!File.Exists(path)) return $"{name} is missing";
            try
            {
                if (JsonNode.Parse(File.ReadAllText(path)) is not JsonObject) return $"{name} is not a JSON object";
            }
            catch (System.Text.Json.JsonException)
            {
                return $"{name} is not valid JSON (truncated?)";
            }
        }
        if (!new[] { SafeTensorsCheckpoint.SingleFileName, SafeTensorsCheckpoint.IndexFileName, SafeTensorsCheckpoint.AdapterFileName }
                .Any(f => File.Exists(Path.Combine(checkpointDir, f))))
            return "holds no weights (model.safetensors or adapter_model.safetensors)";
        if (!File.Exists(Path.Combine(checkpointDir, "rng_state.safetensors"))) return "rng_state.safetensors is missing";
        foreach (var file in Directory.GetFiles(checkpointDir, "*.safetensors").Order(StringComparer.Ordinal))
        {
            try
            {
                SafeTensorsHeader.Read(file);
            }
            catch (InvalidInputException e)
            {
                return $"{Path.GetFileName(file)}: {e.Message[(e.Message.StartsWith(file, StringComparison.Ordinal) ? file.Length + 2 : 0)..]}";
            }
        }
        return null;
    }

    /// <summary>The training loss last logged before the checkpoint (its log_history), or null.</summary>
    public static double? LastLoss(string checkpointDir)
    {
        var history = JsonNode.Parse(File.ReadAllText(Path.Combine(checkpointDir, "trainer_state.json")))?["log_history"] as JsonArray;
        return history?.LastOrDefault(h => h?["loss"] is not null)?["loss"]?.GetValue<double>();
    }

    /// <summary>A checkpoint that a resume can read, or an InvalidInputException naming the folder and what is wrong.</summary>
    public static string RequireComplete(string checkpointDir)
    {
        if (!File.Exists(Path.Combine(checkpointDir, "trainer_state.json")) && !Directory.GetFiles(checkpointDir).Any())
            throw new InvalidInputException($"{checkpointDir}: not a checkpoint (no trainer_state.json)");
        return Problem(checkpointDir) is { } problem
            ? throw new InvalidInputException($"{checkpointDir}: damaged checkpoint: {problem}; resume from another checkpoint-* folder")
            : checkpointDir;
    }

    /// <summary>Restores optimizer, trainer state and RNG; weights are loaded by the caller's loadWeights.</summary>
    /// <param name="loadOptimizer">loads the optimizer state instead of the single optimizer.safetensors (ZeRO: this rank's parameters from every shard).</param>
    public static void Restore(string checkpointDir, TrainState state, Optimizer optimizer, Action<string> loadWeights, Action<string>? readState = null, Action<string>? loadOptimizer = null)
    {
        var stateFile = Path.Combine(checkpointDir, "trainer_state.json");
        if (!File.Exists(stateFile)) throw new InvalidInputException($"{checkpointDir}: not a checkpoint (no trainer_state.json)");
        RequireComplete(checkpointDir);
        loadWeights(checkpointDir);
        try
        {
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
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            // Valid JSON without the fields a checkpoint has: written by something else, or edited by hand.
            throw new InvalidInputException($"{stateFile}: damaged checkpoint: a field is missing or has the wrong type (global_step, tokens_seen, log_history, ...); resume from another checkpoint-* folder");
        }
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

    /// <summary>
    /// The complete checkpoint with the highest step in the output folder, or null. A newer damaged one is passed over
    /// with a warning naming it and what is wrong.
    /// </summary>
    public static string? Latest(string outputDir, Action<string>? warn = null)
    {
        foreach (var (dir, _) in Numbered(outputDir).OrderByDescending(c => c.Step))
        {
            if (Problem(dir) is not { } problem) return dir;
            warn?.Invoke($"{dir}: damaged checkpoint ({problem}); passed over for an older one");
        }
        return null;
    }

    /// <summary>checkpoint-N folders (complete or not) with their step.</summary>
    private static IEnumerable<(string Dir, int Step)> Numbered(string outputDir) =>
        Directory.Exists(outputDir)
            ? Directory.GetDirectories(outputDir, Prefix + "*")
                .Select(d => (Dir: d, Step: int.TryParse(Path.GetFileName(d)[Prefix.Length..], out var s) ? s : -1))
                .Where(c => c.Step >= 0)
            : [];

    /// <summary>Keeps the newest save_total_limit checkpoints and, as transformers does, the best one by eval loss.</summary>
    private void RotateOld(int? bestStep)
    {
        if (saveTotalLimit is not { } limit || limit < 1) return;
        var old = Numbered(outputDir).OrderByDescending(c => c.Step).Skip(limit).Where(c => c.Step != bestStep).ToList();
        // Renamed aside first: a kill during the recursive delete leaves a hidden folder (removed at the next start), never a checkpoint with files missing.
        foreach (var (dir, _) in old) AtomicFolder.Delete(dir);
    }
}
