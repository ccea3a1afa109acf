using SharpTune.Data;
using SharpTune.Modeling;
using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>
/// KTO over batches whose first half are the examples' prompt+completion rows and second half the same prompts with
/// another example's completion: the mismatched rows estimate the KL reference point z, as TRL's KTOTrainer does.
/// </summary>
public sealed class KtoObjective(PreferenceSettings settings) : ITrainingObjective
{
    public long Units(LabeledBatch batch) => batch.Labels.shape[0] / 2;

    public ObjectiveOutput Compute(CausalLM model, LabeledBatch batch)
    {
        using var scope = NewDisposeScope();
        long n = batch.Labels.shape[0] / 2;
        var desirable = batch.Desirable ?? throw new InvalidOperationException("KTO batches carry the desirable flags");
        var policy = PreferenceObjective.SequenceLogProbs(model, Rows(batch, 0, n)).Sums;
        Tensor policyMismatched;
        using (no_grad()) policyMismatched = PreferenceObjective.SequenceLogProbs(model, Rows(batch, n, 2 * n)).Sums;
        var reference = batch.Reference ?? PreferenceObjective.ReferenceLogProbs(model, batch);
        var z = PreferenceLosses.KlBaseline(policyMismatched, reference[(int)n..]);
        var (losses, rewards) = PreferenceLosses.Kto(policy, reference[..(int)n], desirable, z, settings.Beta, settings.DesirableWeight, settings.UndesirableWeight);

        // Means over the desirable (chosen) and undesirable (rejected) examples of the batch; 0 when a side is absent.
        var chosenMask = desirable.to(ScalarType.Float32);
        var rejectedMask = 1 - chosenMask;
        Tensor MeanOver(Tensor values, Tensor mask) => ((values.detach() * mask).sum() / mask.sum().clamp_min(1)).MoveToOuterDisposeScope();
        var chosenRewards = MeanOver(rewards, chosenMask);
        var rejectedRewards = MeanOver(rewards, rejectedMask);
        var metrics = new Dictionary<string, Tensor>
        {
            ["rewards/chosen"] = chosenRewards,
            ["rewards/rejected"] = rejectedRewards,
            ["rewards/margins"] = (chosenRewards - rejectedRewards).MoveToOuterDisposeScope(),
            ["logps/chosen"] = MeanOver(policy, chosenMask),
            ["logps/rejected"] = MeanOver(policy, rejectedMask),
            ["kl"] = z.MoveToOuterDisposeScope(),
        };
        return new ObjectiveOutput(losses.sum().MoveToOuterDisposeScope(), metrics);
    }

    /// <summary>Rows [from, to) of a batch as a batch of their own (views, no copy).</summary>
    private static LabeledBatch Rows(LabeledBatch batch, long from, long to) =>
        new(new ForwardBatch(batch.Inputs.InputIds.narrow(0, from, to - from), batch.Inputs.AttentionMask?.narrow(0, from, to - from)),
            batch.Labels.narrow(0, from, to - from));
}

/// <summary>
/// Unpaired (KTO) examples as batches: rows [prompt_i + completion_i …, prompt_i + completion_j …] where j is the next
/// example with a different prompt, fixed for the whole run (so reference log-probs can be precomputed once).
/// </summary>
public sealed class KtoBatchSource : TwoRowBatchSource
{
    private readonly IReadOnlyList<UnpairedExample> examples;
    private readonly int[] mismatched;

    public KtoBatchSource(IReadOnlyList<UnpairedExample> examples, int microBatchSize, int padTokenId, long seed, bool shuffle)
        : base(examples.Count, microBatchSize, padTokenId, seed, shuffle)
    {
        this.examples = examples;
        mismatched = Enumerable.Range(0, examples.Count).Select(MismatchedPartner).ToArray();
    }

    /// <summary>Desirable and undesirable example counts (TRL advises weights so that w_d·n_d / (w_u·n_u) lies in [1, 4/3]).</summary>
    public (int Desirable, int Undesirable) Counts => (examples.Count(e => e.Desirable), examples.Count(e => !e.Desirable));

    protected override (int[] Prompt, int[] Completion) Row(int example, int row) =>
        (examples[example].PromptIds, examples[row == 0 ? example : mismatched[example]].CompletionIds);

    protected override Tensor? Flags(int[] picked) => tensor(picked.Select(i => examples[i].Desirable).ToArray());

    private int MismatchedPartner(int i)
    {
        // Prompts repeat in runs at most a few long (a paired row unpairs into two); don't scan a whole dataset of one prompt.
        for (int step = 1; step < Math.Min(examples.Count, 64); step++)
        {
            int j = (i + step) % examples.Count;
            if (!examples[j].PromptIds.AsSpan().SequenceEqual(examples[i].PromptIds)) return j;
        }
        return (i + 1) % examples.Count;
    }
}
