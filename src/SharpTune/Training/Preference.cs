using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;
using static TorchSharp.torch;
using SharpTune.Tokenization;

namespace SharpTune.Training;

/// <summary>The preference objective and its hyper-parameters, as TRL names them.</summary>
public sealed record PreferenceSettings(RlType Kind, double Beta, DpoLossType DpoLossType = DpoLossType.Sigmoid, double LabelSmoothing = 0, double OrpoAlpha = 0.1, double SimpoGamma = 0.5,
    double DesirableWeight = 1, double UndesirableWeight = 1)
{
    public static PreferenceSettings From(TrainConfig config) => config.Rl switch
    {
        RlType.Dpo => new(RlType.Dpo, config.RlBeta, config.DpoLossType, config.DpoLabelSmoothing),
        RlType.Orpo => new(RlType.Orpo, config.OrpoAlpha, OrpoAlpha: config.OrpoAlpha),
        RlType.Simpo => new(RlType.Simpo, config.RlBeta, LabelSmoothing: config.DpoLabelSmoothing, SimpoGamma: config.SimpoGamma),
        RlType.Kto => new(RlType.Kto, config.RlBeta, DesirableWeight: config.KtoDesirableWeight, UndesirableWeight: config.KtoUndesirableWeight),
        _ => throw new InvalidInputException($"rl: {config.Rl} is not supported by this build; supported: dpo, orpo, simpo, kto"),
    };

    /// <summary>IPO, ORPO and SimPO compare per-token average log-probs; sigmoid/hinge DPO compare sums.</summary>
    public bool AveragesLogProbs => Kind is RlType.Orpo or RlType.Simpo || DpoLossType == DpoLossType.Ipo;
}

/// <summary>Per-pair losses and rewards from sequence log-probs (formulas in docs/preference.md).</summary>
public static class PreferenceLosses
{
    /// <summary>DPO (Rafailov et al.), IPO (Azar et al.) and hinge (SLiC) on log-ratio differences, TRL's definitions.</summary>
    public static (Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards) Dpo(Tensor policyChosen, Tensor policyRejected,
        Tensor referenceChosen, Tensor referenceRejected, double beta, DpoLossType lossType, double labelSmoothing)
    {
        var logits = (policyChosen - policyRejected) - (referenceChosen - referenceRejected);
        var losses = lossType switch
        {
            DpoLossType.Sigmoid => -nn.functional.logsigmoid(logits * beta) * (1 - labelSmoothing) - nn.functional.logsigmoid(logits * -beta) * labelSmoothing,
            DpoLossType.Hinge => nn.functional.relu(1 - logits * beta),
            DpoLossType.Ipo => (logits - 1 / (2 * beta)).pow(2),
            _ => throw new InvalidInputException($"dpo_loss_type: {ConfigNames.ToSnake(lossType.ToString())} is not supported; allowed: sigmoid, ipo, hinge"),
        };
        return (losses, ((policyChosen - referenceChosen) * beta).detach(), ((policyRejected - referenceRejected) * beta).detach());
    }

    /// <summary>ORPO's odds-ratio term −β·log σ(log odds(chosen) − log odds(rejected)) on average log-probs (the SFT term is added by the caller).</summary>
    public static (Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards) OddsRatio(Tensor averageChosen, Tensor averageRejected, double beta)
    {
        var logOdds = (averageChosen - averageRejected) - ((-averageChosen.exp()).log1p() - (-averageRejected.exp()).log1p());
        var losses = -nn.functional.logsigmoid(logOdds) * beta;
        return (losses, (averageChosen * beta).detach(), (averageRejected * beta).detach());
    }

    /// <summary>SimPO: −log σ(β·(avg_c − avg_r) − γ), reference-free and length-normalised.</summary>
    public static (Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards) Simpo(Tensor averageChosen, Tensor averageRejected, double beta, double gamma, double labelSmoothing)
    {
        var logits = (averageChosen - averageRejected) - gamma / beta;
        var losses = -nn.functional.logsigmoid(logits * beta) * (1 - labelSmoothing) - nn.functional.logsigmoid(logits * -beta) * labelSmoothing;
        return (losses, (averageChosen * beta).detach(), (averageRejected * beta).detach());
    }

    /// <summary>
    /// KTO (Ethayarajh et al. 2024, TRL's KTOTrainer): desirable w_d·(1 − σ(β·(r − z))), undesirable w_u·(1 − σ(β·(z − r))),
    /// r = log π(y|x) − log ref(y|x) (sums), z = max(0, mean of the KL rows' log-ratios), without gradient.
    /// </summary>
    public static (Tensor Losses, Tensor Rewards) Kto(Tensor policy, Tensor reference, Tensor desirable, Tensor klBaseline,
        double beta, double desirableWeight, double undesirableWeight)
    {
        var logRatios = policy - reference;
        var z = klBaseline.detach();
        var desirableLosses = (1 - nn.functional.sigmoid((logRatios - z) * beta)) * desirableWeight;
        var undesirableLosses = (1 - nn.functional.sigmoid((z - logRatios) * beta)) * undesirableWeight;
        return (where(desirable, desirableLosses, undesirableLosses), (logRatios * beta).detach());
    }

    /// <summary>KTO's reference point z: the batch mean of log π − log ref over mismatched (prompt, completion) rows, clamped at 0.</summary>
    public static Tensor KlBaseline(Tensor policyMismatched, Tensor referenceMismatched) =>
        (policyMismatched - referenceMismatched).mean().clamp_min(0).detach();
}

/// <summary>
/// Preference objective over batches whose first half are prompt+chosen rows and second half prompt+rejected rows
/// (one forward for both). The DPO reference is the same network with adapters off, or precomputed log-probs.
/// </summary>
public sealed class PreferenceObjective(PreferenceSettings settings) : ITrainingObjective
{
    public long Units(LabeledBatch batch) => batch.Labels.shape[0] / 2;

    public ObjectiveOutput Compute(CausalLM model, LabeledBatch batch)
    {
        using var scope = NewDisposeScope();
        var (sums, counts, nllSum) = SequenceLogProbs(model, batch);
        long pairs = sums.shape[0] / 2;
        var policy = settings.AveragesLogProbs ? sums / counts : sums;
        var (chosen, rejected) = (policy[..(int)pairs], policy[(int)pairs..]);
        Tensor losses, chosenRewards, rejectedRewards;
        switch (settings.Kind)
        {
            case RlType.Dpo:
                var referenceSums = batch.Reference ?? ReferenceLogProbs(model, batch);
                var reference = settings.AveragesLogProbs ? referenceSums / counts : referenceSums;
                (losses, chosenRewards, rejectedRewards) = PreferenceLosses.Dpo(chosen, rejected, reference[..(int)pairs], reference[(int)pairs..], settings.Beta, settings.DpoLossType, settings.LabelSmoothing);
                break;
            case RlType.Orpo:
                (losses, chosenRewards, rejectedRewards) = PreferenceLosses.OddsRatio(chosen, rejected, settings.OrpoAlpha);
                // SFT term on the chosen completions: their token mean, counted once per pair.
                var chosenTokens = counts[..(int)pairs].sum();
                losses = losses + nllSum / chosenTokens;
                break;
            case RlType.Simpo:
                (losses, chosenRewards, rejectedRewards) = PreferenceLosses.Simpo(chosen, rejected, settings.Beta, settings.SimpoGamma, settings.LabelSmoothing);
                break;
            default:
                throw new InvalidInputException($"rl: {ConfigNames.ToSnake(settings.Kind.ToString())} is not supported by the pairwise preference objective; supported: dpo, orpo, simpo");
        }
        var metrics = new Dictionary<string, Tensor>
        {
            ["rewards/chosen"] = chosenRewards.mean().MoveToOuterDisposeScope(),
            ["rewards/rejected"] = rejectedRewards.mean().MoveToOuterDisposeScope(),
            ["rewards/accuracies"] = (chosenRewards > rejectedRewards).to(ScalarType.Float32).mean().MoveToOuterDisposeScope(),
            ["rewards/margins"] = (chosenRewards - rejectedRewards).mean().MoveToOuterDisposeScope(),
            ["logps/chosen"] = chosen.detach().mean().MoveToOuterDisposeScope(),
            ["logps/rejected"] = rejected.detach().mean().MoveToOuterDisposeScope(),
        };
        return new ObjectiveOutput(losses.sum().MoveToOuterDisposeScope(), metrics);
    }

    /// <summary>Per row: summed log-prob of its labelled tokens, their count, and the chosen rows' summed NLL.</summary>
    internal static (Tensor Sums, Tensor Counts, Tensor ChosenNll) SequenceLogProbs(CausalLM model, LabeledBatch batch)
    {
        var logits = model.Forward(batch.Inputs);
        var tokenLogProbs = CausalLmLoss.TokenLogProbs(logits, batch.Labels);
        var sums = tokenLogProbs.sum(1);
        var counts = batch.Labels[.., 1..].ne(TokenLabels.IgnoreIndex).sum(1).to(ScalarType.Float32).clamp_min(1);
        long pairs = sums.shape[0] / 2;
        return (sums, counts, -sums[..(int)pairs].sum());
    }

    /// <summary>The frozen base: adapters switched off, no gradient.</summary>
    internal static Tensor ReferenceLogProbs(CausalLM model, LabeledBatch batch) =>
        WithAdaptersOff(model, () => SequenceLogProbs(model, batch).Sums.detach());

    /// <summary>Runs <paramref name="compute"/> without gradient on the base model: every adapter switched off, then on again.</summary>
    public static Tensor WithAdaptersOff(CausalLM model, Func<Tensor> compute)
    {
        var layers = model.modules().OfType<LinearLayer>().Where(l => l.Adapter is not null).ToList();
        if (layers.Count == 0)
            throw new InvalidOperationException("a reference pass without adapters needs a frozen copy or precomputed log-probs");
        using var noGrad = no_grad();
        foreach (var l in layers) l.AdapterEnabled = false;
        try
        {
            return compute();
        }
        finally
        {
            foreach (var l in layers) l.AdapterEnabled = true;
        }
    }

    /// <summary>Reference log-prob sums for every row of a batch with the model as it is now (used before training).</summary>
    public static Tensor PrecomputeReference(CausalLM model, LabeledBatch batch)
    {
        using var noGrad = no_grad();
        return SequenceLogProbs(model, batch).Sums.detach();
    }
}

/// <summary>
/// Batches of two rows per example, right-padded, labels only on the completions: all first rows of the picked
/// examples, then all second rows. Optionally carries reference log-prob sums computed once before training.
/// </summary>
public abstract class TwoRowBatchSource(int count, int microBatchSize, int padTokenId, long seed, bool shuffle) : IBatchSource
{
    private float[]? referenceSums;

    public int BatchesPerEpoch => (count + microBatchSize - 1) / microBatchSize;

    /// <summary>Row 0 or 1 of example i as (prompt, completion) token ids.</summary>
    protected abstract (int[] Prompt, int[] Completion) Row(int example, int row);

    /// <summary>Per-example flags the objective needs besides the tokens (KTO: desirable), or null.</summary>
    protected virtual Tensor? Flags(int[] picked) => null;

    public LabeledBatch Batch(int epoch, int index) => Build(Picked(epoch, index));

    /// <summary>The batch of the given examples: their first rows, then their second rows.</summary>
    private LabeledBatch Build(int[] picked)
    {
        var rows = picked.Select(i => Row(i, 0)).Concat(picked.Select(i => Row(i, 1))).ToList();
        int width = rows.Max(r => r.Prompt.Length + r.Completion.Length);
        var ids = new long[rows.Count * width];
        var labels = new long[rows.Count * width];
        var mask = new long[rows.Count * width];
        for (int r = 0; r < rows.Count; r++)
        {
            var (prompt, completion) = rows[r];
            for (int t = 0; t < width; t++)
            {
                int i = r * width + t;
                bool inPrompt = t < prompt.Length, inCompletion = !inPrompt && t < prompt.Length + completion.Length;
                ids[i] = inPrompt ? prompt[t] : inCompletion ? completion[t - prompt.Length] : padTokenId;
                labels[i] = inCompletion ? ids[i] : TokenLabels.IgnoreIndex;
                mask[i] = inPrompt || inCompletion ? 1 : 0;
            }
        }
        long[] shape = [rows.Count, width];
        Tensor? reference = referenceSums is null ? null : tensor(picked.Select(i => referenceSums[i]).Concat(picked.Select(i => referenceSums[count + i])).ToArray());
        return new LabeledBatch(new ForwardBatch(tensor(ids, shape), tensor(mask, shape)), tensor(labels, shape), reference, Flags(picked));
    }

    /// <summary>Scores every row once with the reference model (the starting policy) and attaches the sums to later batches.</summary>
    public void PrecomputeReference(CausalLM model)
    {
        var sums = new float[2 * count];
        referenceSums = null;
        model.eval();
        // Any grouping scores the same rows: take them in order instead of drawing an epoch's permutation per batch.
        for (int first = 0; first < count; first += microBatchSize)
        {
            using var scope = NewDisposeScope();
            var picked = Enumerable.Range(first, Math.Min(microBatchSize, count - first)).ToArray();
            using var batch = Build(picked).MoveTo(model.Device);
            var values = PreferenceObjective.PrecomputeReference(model, batch).cpu().data<float>().ToArray();
            for (int k = 0; k < picked.Length; k++)
            {
                sums[picked[k]] = values[k];
                sums[count + picked[k]] = values[picked.Length + k];
            }
        }
        model.train();
        referenceSums = sums;
    }

    private int[] Picked(int epoch, int index)
    {
        var order = shuffle ? SeededShuffle.Permutation(count, seed * 1_000_003L + epoch) : Enumerable.Range(0, count).ToArray();
        return order.Skip(index * microBatchSize).Take(microBatchSize).ToArray();
    }
}

/// <summary>Preference pairs as batches: rows [prompt+chosen …, prompt+rejected …] (one forward for both).</summary>
public sealed class PreferenceBatchSource(IReadOnlyList<PreferenceExample> pairs, int microBatchSize, int padTokenId, long seed, bool shuffle)
    : TwoRowBatchSource(pairs.Count, microBatchSize, padTokenId, seed, shuffle)
{
    protected override (int[] Prompt, int[] Completion) Row(int example, int row) =>
        (pairs[example].PromptIds, row == 0 ? pairs[example].ChosenIds : pairs[example].RejectedIds);
}
