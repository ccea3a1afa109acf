using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;
using SharpTune.Tokenization;

namespace SharpTune.Training;

/// <summary>
/// Supervised fine-tuning and pretraining: next-token cross-entropy over packed or padded rows, or over a streamed
/// pretraining_dataset; with eval_exact_match_samples, greedy completions of held-out prompts are scored before and after.
/// </summary>
public sealed class SupervisedSetup(ITrainingObjective objective, IBatchSource train, IBatchSource? eval) : IObjectiveSetup
{
    public ITrainingObjective Objective => objective;
    public IBatchSource Train => train;
    public IBatchSource? Eval => eval;

    /// <summary>Held-out rows whose prompt (tokens before the first label) is completed greedily against their labelled answer.</summary>
    public ExactMatchReport? ExactMatch { get; init; }

    public bool Reports => ExactMatch is not null;

    public void Report(string when, CausalLM model) => ExactMatch?.Print(when, model);

    public static SupervisedSetup From(TrainConfig config, PreparedData data, ObjectiveInputs inputs)
    {
        int padId = Objectives.PadId(inputs.Tokenizer);
        IBatchSource train = config.PretrainingDataset.Count > 0
            ? new StreamedPretrainSource(new PretrainStream(config, inputs.Tokenizer, inputs.ConfigDir, inputs.Hub), config.MicroBatchSize,
                config.MaxSteps!.Value * config.GradientAccumulationSteps * inputs.WorldSize)
            : new BatchPlanSource(new BatchPlan(data.Train, config.MicroBatchSize, config.SequenceLen, config.SamplePacking, config.PadToSequenceLen, padId, config.Seed));
        IBatchSource? eval = data.Eval.Count == 0 ? null
            : new BatchPlanSource(new BatchPlan(data.Eval, config.EvalBatchSize ?? config.MicroBatchSize, config.SequenceLen, config.EvalSamplePacking ?? config.SamplePacking,
                config.PadToSequenceLen, padId, config.Seed));
        var examples = config.EvalExactMatchSamples > 0 ? data.Eval.Take(config.EvalExactMatchSamples).ToList() : [];
        return new SupervisedSetup(new CausalLmObjective(outputRouterLogits: config.OutputRouterLogits), train, eval)
        {
            ExactMatch = examples.Count == 0 ? null : new ExactMatchReport(inputs.Tokenizer, inputs.ModelDir, examples, inputs.Console),
        };
    }
}

/// <summary>Greedy completions of held-out rows' prompts (tokens before the first label) against their labelled answer.</summary>
public sealed class ExactMatchReport(HfTokenizer tokenizer, string modelDir, IReadOnlyList<TokenizedExample> examples, TextWriter console)
{
    public void Print(string when, CausalLM model)
    {
        var result = new Inference.Evaluator(model, tokenizer, Inference.GenerationDefaults.Load(modelDir, model.Config)).ExactMatch(examples);
        console.WriteLine($"held-out exact match {when}: {result.Correct}/{result.Total} ({100.0 * result.Correct / Math.Max(1, result.Total):F1}%)");
        if (result.Sample is { } sample)
            console.WriteLine($"  sample: {ReportText.OneLine(sample.Prompt)} → {ReportText.OneLine(sample.Generated)} (expected {ReportText.OneLine(sample.Expected)})");
    }
}
