using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Hub;
using SharpTune.Modeling;
using SharpTune.Tokenization;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>Loss of one micro-batch as a sum over its units (tokens, or pairs), so the trainer can normalise over the whole step.</summary>
public sealed record ObjectiveOutput(Tensor LossSum, IReadOnlyDictionary<string, Tensor> Metrics);

/// <summary>What SFT, pretraining, DPO, ORPO... differ in; the training loop is shared.</summary>
public interface ITrainingObjective
{
    /// <summary>How many units this batch contributes to the step's normaliser (known before any forward).</summary>
    long Units(LabeledBatch batch);
    ObjectiveOutput Compute(CausalLM model, LabeledBatch batch);
    /// <summary>Whether the loss is a mean next-token NLL, so that exp(loss) is a perplexity.</summary>
    bool LossIsTokenNll => false;
}

/// <summary>
/// What an objective brings to the recipe besides its loss: its batch sources, what it does with the starting model,
/// its held-out report before and after training, and callbacks of its own. The recipe runs every objective the same way.
/// </summary>
public interface IObjectiveSetup : IDisposable
{
    ITrainingObjective Objective { get; }
    IBatchSource Train { get; }
    IBatchSource? Eval { get; }

    /// <summary>The starting model is built, before any checkpoint is restored (e.g. to score it as a DPO reference).</summary>
    void OnModelReady(CausalLM model) { }

    /// <summary>Whether <see cref="Report"/> prints anything (under ZeRO-3 a report first gathers the whole model on every rank).</summary>
    bool Reports => false;

    /// <summary>The held-out figure the objective should move, printed with the model in eval mode before the first step and after the last.</summary>
    void Report(string when, CausalLM model) { }

    /// <summary>Callbacks besides metrics, plot, progress and TensorBoard (e.g. GRPO's completion log).</summary>
    IReadOnlyList<ITrainerCallbacks> Callbacks => [];

    void IDisposable.Dispose() { }
}

/// <summary>What the objectives' batch sources and reports are built from, besides the config and the prepared data.</summary>
/// <param name="ConfigDir">relative reward-function and dataset paths are read from here.</param>
/// <param name="WorldSize">ranks of the job: a streamed dataset yields accumulation × world rows per step.</param>
public sealed record ObjectiveInputs(HfTokenizer Tokenizer, string ModelDir, string ConfigDir, HubLookup Hub, TextWriter Console, Action<string> Warn, int WorldSize);

/// <summary>The one place a run's objective is chosen: rl (none, dpo, orpo, simpo, kto, grpo) → objective and batch sources.</summary>
public static class Objectives
{
    public static IObjectiveSetup For(TrainConfig config, PreparedData data, ObjectiveInputs inputs) => config.Rl switch
    {
        null => SupervisedSetup.From(config, data, inputs),
        RlType.Grpo => GrpoSetup.From(config, data, inputs),
        RlType.Kto => PreferenceSetup.Kto(config, data, inputs),
        RlType.Dpo or RlType.Orpo or RlType.Simpo => PreferenceSetup.Pairs(config, data, inputs),
        _ => throw new InvalidInputException($"rl: {config.Rl} is not supported by this build; supported: dpo, orpo, simpo, kto, grpo"),
    };

    /// <summary>The pad id batches are filled with: the tokenizer's pad token, else its EOS, else 0.</summary>
    internal static int PadId(HfTokenizer tokenizer) => tokenizer.PadTokenId ?? tokenizer.EosTokenId ?? 0;
}
