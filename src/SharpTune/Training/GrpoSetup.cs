using System.Globalization;
using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;

namespace SharpTune.Training;

/// <summary>
/// GRPO: batches are rollouts the policy samples from the prompts and the reward functions score. Full fine-tuning
/// with beta ≠ 0 keeps a frozen copy of the starting model as the KL reference (an adapter run switches its adapters
/// off instead); the held-out mean greedy reward is printed before and after training.
/// </summary>
public sealed class GrpoSetup(GrpoSettings settings, GrpoRolloutSource train, GrpoRolloutSource? eval, int evalPrompts, TrainConfig config, ObjectiveInputs inputs)
    : IObjectiveSetup
{
    private CausalLM? frozenReference;

    public ITrainingObjective Objective { get; } = new GrpoObjective(settings);
    public IBatchSource Train => train;
    public IBatchSource? Eval => eval;

    public IReadOnlyList<ITrainerCallbacks> Callbacks => [new GrpoCompletionLog(train, eval, config.Trl.LogCompletions, config.OutputDir, inputs.Console)];

    public static GrpoSetup From(TrainConfig config, PreparedData data, ObjectiveInputs inputs)
    {
        var settings = GrpoSettings.From(config.Trl);
        var rewards = new RewardSet(RewardFunctions.From(config, inputs.ConfigDir), config.Trl.RewardWeights);
        int shown = config.Trl.NumCompletionsToPrint ?? 3, padId = Objectives.PadId(inputs.Tokenizer);
        var train = new GrpoRolloutSource(data.PromptTrain, settings, rewards, inputs.Tokenizer, padId, config.MicroBatchSize, config.GradientAccumulationSteps, config.Seed, training: true, shown);
        var eval = data.PromptEval.Count == 0 ? null
            : new GrpoRolloutSource(data.PromptEval, settings, rewards, inputs.Tokenizer, padId, config.EvalBatchSize ?? config.MicroBatchSize, 1, config.Seed, training: false, shown);
        return new GrpoSetup(settings, train, eval, data.PromptEval.Count, config, inputs);
    }

    public void OnModelReady(CausalLM model)
    {
        if (config.Trl.Beta != 0 && config.Adapter is null)
        {
            frozenReference = ModelLoader.Load(inputs.ModelDir, new ModelLoadOptions { DType = model.parameters().First().dtype, Device = model.Device });
            foreach (var p in frozenReference.parameters()) p.requires_grad = false;
            frozenReference.eval();
        }
        var eos = Inference.GenerationDefaults.Load(inputs.ModelDir, model.Config).StopTokenIds(inputs.Tokenizer);
        train.Attach(model, frozenReference, eos);
        eval?.Attach(model, frozenReference, eos);
    }

    public bool Reports => eval is not null;

    /// <summary>Greedy completions of the held-out prompts, scored by the run's rewards (the figure GRPO should raise).</summary>
    public void Report(string when, CausalLM model)
    {
        if (eval is null) return;
        var (mean, n, sample) = eval.GreedyReward(model, evalPrompts);
        inputs.Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"held-out mean reward {when} (greedy): {mean:F3} over {n} prompts"));
        if (sample is not null)
            inputs.Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  sample: {ReportText.OneLine(sample.Prompt)} → {ReportText.OneLine(sample.Completion)} (reward {sample.Reward:0.###})"));
    }

    public void Dispose() => frozenReference?.Dispose();
}
