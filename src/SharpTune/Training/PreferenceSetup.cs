using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;

namespace SharpTune.Training;

/// <summary>
/// Preference tuning: DPO, ORPO and SimPO on chosen/rejected pairs, KTO on unpaired examples. A DPO or KTO run without
/// an adapter to switch off (or with precompute_ref_log_probs) scores every row once with the starting model as its
/// reference instead of keeping a frozen copy.
/// </summary>
public sealed class PreferenceSetup(ITrainingObjective objective, TwoRowBatchSource train, TwoRowBatchSource? eval, bool precomputeReference) : IObjectiveSetup
{
    public ITrainingObjective Objective => objective;
    public IBatchSource Train => train;
    public IBatchSource? Eval => eval;

    public void OnModelReady(CausalLM model)
    {
        if (!precomputeReference) return;
        train.PrecomputeReference(model);
        eval?.PrecomputeReference(model);
    }

    /// <summary>rl: dpo, orpo, simpo over chosen/rejected pairs.</summary>
    public static PreferenceSetup Pairs(TrainConfig config, PreparedData data, ObjectiveInputs inputs)
    {
        int padId = Objectives.PadId(inputs.Tokenizer);
        var train = new PreferenceBatchSource(data.PreferenceTrain, config.MicroBatchSize, padId, config.Seed, shuffle: true);
        var eval = data.PreferenceEval.Count == 0 ? null
            : new PreferenceBatchSource(data.PreferenceEval, config.EvalBatchSize ?? config.MicroBatchSize, padId, config.Seed, shuffle: false);
        return new PreferenceSetup(new PreferenceObjective(PreferenceSettings.From(config)), train, eval, PrecomputesReference(config));
    }

    /// <summary>rl: kto over desirable / undesirable examples; warns when their weighted balance is outside what the paper advises.</summary>
    public static PreferenceSetup Kto(TrainConfig config, PreparedData data, ObjectiveInputs inputs)
    {
        if (data.UnpairedTrain.Count < 2)
            throw new InvalidInputException($"rl: kto needs at least 2 training examples (the KL reference point pairs prompts with other examples' completions); got {data.UnpairedTrain.Count}");
        int padId = Objectives.PadId(inputs.Tokenizer);
        var train = new KtoBatchSource(data.UnpairedTrain, config.MicroBatchSize, padId, config.Seed, shuffle: true);
        var (desirable, undesirable) = train.Counts;
        double balance = config.KtoDesirableWeight * desirable / Math.Max(config.KtoUndesirableWeight * undesirable, 1e-9);
        if (desirable > 0 && undesirable > 0 && balance is < 1 or > 4.0 / 3)
            inputs.Warn($"kto: kto_desirable_weight × {desirable} desirable / (kto_undesirable_weight × {undesirable} undesirable) = {balance:F2}; " +
                        "the KTO paper advises weights that put this ratio in [1, 4/3]");
        var eval = data.UnpairedEval.Count == 0 ? null
            : new KtoBatchSource(data.UnpairedEval, config.EvalBatchSize ?? config.MicroBatchSize, padId, config.Seed, shuffle: false);
        return new PreferenceSetup(new KtoObjective(PreferenceSettings.From(config)), train, eval, PrecomputesReference(config));
    }

    /// <summary>DPO and KTO need reference log-probs; a full fine-tune has no adapter to switch off to get them live.</summary>
    private static bool PrecomputesReference(TrainConfig config) =>
        config.Rl is RlType.Dpo or RlType.Kto && (config.Adapter is null || config.PrecomputeRefLogProbs);
}
