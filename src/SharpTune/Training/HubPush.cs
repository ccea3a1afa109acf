using System.Globalization;
using System.Text;
using SharpTune.Config;
using SharpTune.Hub;

namespace SharpTune.Training;

/// <summary>
/// hub_model_id: pushes the run to the hub as transformers' Trainer does for each hub_strategy — end: the output folder
/// once after training; every_save: also the model files of every checkpoint as they are saved; checkpoint: those plus the
/// whole latest checkpoint as last-checkpoint/; all_checkpoints: every checkpoint-N/ folder as well. A README.md model card
/// (base model, datasets, metrics, the training config) is written to output_dir and pushed with the final files.
/// </summary>
public sealed class HubPush
{
    // What a checkpoint holds besides the weights: resume state, not model files.
    private static readonly string[] ResumeState = ["optimizer.*", "scheduler.json", "trainer_state.json", "rng_state.*", "config.yaml"];

    private readonly TrainConfig config;
    private readonly HubSettings settings;
    private readonly TextWriter console;
    private readonly HubRepo repo;

    public HubPush(TrainConfig config, HubSettings settings, TextWriter console)
    {
        this.config = config;
        this.settings = settings;
        this.console = console;
        repo = HubRepo.Parse(config.HubModelId!, RepoType.Model, "hub_model_id");
        // Refused before any training: a run that cannot push should not find out after hours.
        if (settings.Offline) throw new InvalidInputException("hub_model_id: HF_HUB_OFFLINE is set, so nothing can be pushed; unset it or remove hub_model_id");
        if (settings.Token is null) throw new InvalidInputException($"hub_model_id: pushing to {repo.Id} needs a token with write access; {HubSettings.TokenHint}");
    }

    /// <summary>After checkpoint-STEP is written (every_save, checkpoint, all_checkpoints).</summary>
    public void AfterSave(string checkpointDir, int step)
    {
        if (config.HubStrategy == HubStrategy.End) return;
        string name = Path.GetFileName(checkpointDir);
        Push(checkpointDir, "", $"Training in progress, step {step}", ResumeState);
        if (config.HubStrategy == HubStrategy.Checkpoint) Push(checkpointDir, "last-checkpoint", $"Training in progress, step {step} (last-checkpoint)", []);
        if (config.HubStrategy == HubStrategy.AllCheckpoints) Push(checkpointDir, name, $"Training in progress, step {step} ({name})", []);
    }

    /// <summary>After the final adapter or model is saved: the model card, then the output folder without checkpoints and caches.</summary>
    public void AtEnd(TrainOutcome outcome)
    {
        File.WriteAllText(Path.Combine(outcome.OutputDir, "README.md"), ModelCard(outcome), new UTF8Encoding(false));
        var exclude = new List<string> { "checkpoint-*", ".checkpoint-*", ".*.tmp-*" };
        string prepared = Path.GetFullPath(config.DatasetPreparedPath ?? Path.Combine(config.OutputDir, "prepared"));
        string relative = Path.GetRelativePath(Path.GetFullPath(outcome.OutputDir), prepared).Replace('\\', '/');
        if (!relative.StartsWith("..", StringComparison.Ordinal) && relative != ".") exclude.Add(relative + "/*");
        Push(outcome.OutputDir, "", "End of training", exclude);
    }

    private void Push(string folder, string pathInRepo, string message, IReadOnlyList<string> exclude)
    {
        try
        {
            new HubUploader(settings, console.WriteLine).Push(new PushRequest(folder, repo)
            {
                Private = config.HubPrivateRepo, CommitMessage = message, PathInRepo = pathInRepo, Exclude = exclude,
            });
        }
        catch (InvalidInputException e)
        {
            throw new InvalidInputException($"hub_model_id: pushing {folder} failed (it stays on disk): {e.Message}");
        }
        catch (HubException e)
        {
            throw new HubException($"hub_model_id: pushing {folder} failed (it stays on disk): {e.Message}");
        }
    }

    /// <summary>A model card in the form transformers writes (YAML front matter, then results and the training config).</summary>
    public string ModelCard(TrainOutcome outcome)
    {
        var inv = CultureInfo.InvariantCulture;
        string baseModel = config.BaseModel ?? "";
        bool baseIsRepo = ModelLocator.IsRepoId(baseModel);
        var sb = new StringBuilder("---\n");
        if (baseIsRepo) sb.Append("base_model: ").Append(baseModel).Append('\n');
        sb.Append("library_name: ").Append(config.Adapter is null ? "transformers" : "peft").Append('\n');
        sb.Append("tags:\n- sharptune\n- generated_from_trainer\n");
        if (config.Adapter is { } adapter) sb.Append("- ").Append(ConfigNames.ToSnake(adapter.ToString())).Append('\n');
        var hubDatasets = config.Datasets.Select(d => d.Path).OfType<string>().Where(ModelLocator.IsRepoId).Distinct().ToList();
        if (hubDatasets.Count > 0) sb.Append("datasets:\n").Append(string.Concat(hubDatasets.Select(d => $"- {d}\n")));
        sb.Append("---\n\n# ").Append(repo.Id[(repo.Id.IndexOf('/') + 1)..]).Append("\n\n");
        sb.Append("This model is ").Append(config.Adapter is null ? "a fine-tuned version of " : "a PEFT adapter (LoRA) for ")
          .Append(baseIsRepo ? $"[{baseModel}]({settings.Endpoint}/{baseModel})" : $"`{Path.GetFileName(baseModel.TrimEnd('/'))}`")
          .Append(", trained with SharpTune on ").Append(string.Join(", ", config.Datasets.Select(d => $"`{d.Path}` ({d.Type})"))).Append(".\n\n");
        sb.Append("## Results\n\n| metric | value |\n|---|---|\n");
        sb.Append($"| optimizer steps | {outcome.Steps} |\n");
        if (outcome.FinalLoss is { } loss) sb.Append(inv, $"| final training loss | {loss:F4} |\n");
        if (outcome.FinalEval is { } eval)
        {
            sb.Append(inv, $"| validation loss | {eval.Loss:F4} |\n");
            if (eval.Perplexity is { } p) sb.Append(inv, $"| validation perplexity | {p:F2} |\n");
        }
        if (outcome.Logs.LastOrDefault() is { } last) sb.Append(inv, $"| tokens seen | {last.TokensSeen} |\n| epochs | {last.Epoch:F2} |\n");
        if (outcome.Logs.Count > 0)
        {
            sb.Append("\n### Training loss\n\n| step | epoch | loss | learning rate |\n|---|---|---|---|\n");
            foreach (var log in outcome.Logs) sb.Append(inv, $"| {log.Step} | {log.Epoch:F2} | {log.Loss:F4} | {log.LearningRate:E2} |\n");
        }
        sb.Append("\n## Training config\n\n```yaml\n").Append(ConfigWriter.ToYaml(config)).Append("```\n");
        return sb.ToString();
    }
}
