using SharpTune.Config;
using SharpTune.Data;
using SharpTune.Modeling;
using SharpTune.Tokenization;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>
/// The whole GRPO path on a real policy (the bundled untrained tiny chat model): rollouts → rows and labels → per-token
/// log-probs → loss → one gradient step. A sign error, labels shifted by a token, prompt or padding tokens trained, or the
/// stopping token left out would each fail here; the hand-computed loss tests cannot see any of those.
/// </summary>
public sealed class GrpoDirectionTests
{
    private static readonly string ModelDir = Path.Combine(TestPaths.RepoRoot, "examples", "models", "tiny-chat");

    // The stopping ids: the first half of the byte vocabulary. An untrained model picks one of them about half the time,
    // so "stopped at the first token" is a reward every group has a spread of, and it is carried by the EOS token alone.
    private static readonly long[] StopIds = Enumerable.Range(0, 128).Select(i => (long)i).ToArray();
    private static readonly string[] Words = ["Reverse: abcd", "Reverse: wxyz", "Reverse: kelp", "Reverse: mist"];

    /// <summary>
    /// Completions of one token: 1 when it is a stopping id (it decodes to one ASCII character: the vocabulary is bytes,
    /// id = byte), else 0; or the opposite. Only the first position carries the reward, so nothing but its own
    /// gradient moves the measured probability.
    /// </summary>
    private sealed class FirstTokenStops(bool preferStopping) : IRewardFunction
    {
        public string Name => "first_token_stops";

        public double[] Score(IReadOnlyList<RewardInput> inputs) =>
            inputs.Select(i => (i.Completion.Length == 1 && i.Completion[0] < 128) == preferStopping ? 1.0 : 0.0).ToArray();
    }

    /// <summary>Any reward: the layout test only needs completions of several lengths.</summary>
    private sealed class Constant : IRewardFunction
    {
        public string Name => "constant";
        public double[] Score(IReadOnlyList<RewardInput> inputs) => inputs.Select(_ => 0.0).ToArray();
    }

    private static List<PromptExample> Prompts(HfTokenizer tokenizer) => Words.Select(w =>
    {
        var text = $"<|im_start|>user\n{w}<|im_end|>\n<|im_start|>assistant\n";
        return new PromptExample(tokenizer.Encode(text, addSpecialTokens: false).ToArray(), text, "{}");
    }).ToList();

    private static GrpoRolloutSource Source(CausalLM model, HfTokenizer tokenizer, GrpoSettings settings, IRewardFunction reward)
    {
        var source = new GrpoRolloutSource(Prompts(tokenizer), settings, new RewardSet([reward], []), tokenizer,
            padId: 256, microBatchSize: 32, gradientAccumulationSteps: 1, seed: 7, training: true);
        source.Attach(model, null, StopIds);
        return source;
    }

    [Theory]
    [InlineData(true, GrpoLossType.Grpo)]
    [InlineData(false, GrpoLossType.Grpo)]
    [InlineData(false, GrpoLossType.DrGrpo)]
    public void OneStepMovesTheRewardedTokensProbabilityTheRightWay(bool preferStopping, GrpoLossType lossType)
    {
        using var model = ModelLoader.Load(ModelDir);
        var tokenizer = HfTokenizer.FromDirectory(ModelDir);
        var settings = new GrpoSettings { NumGenerations = 8, MaxCompletionLength = 1, Temperature = 1.0, LossType = lossType };
        var source = Source(model, tokenizer, settings, new FirstTokenStops(preferStopping));
        var prompts = Prompts(tokenizer);

        double before = StopProbability(model, prompts);
        using var batch = source.Batch(0, 0);
        Assert.True(batch.Rollout!.Figures["reward_std"] > 0, "the groups have a reward spread");

        model.train();
        var objective = new GrpoObjective(settings);
        var output = objective.Compute(model, batch);
        using (var loss = output.LossSum / objective.Units(batch)) loss.backward();
        using (no_grad())
            foreach (var p in model.parameters())
                if (p.grad is { } g) p.sub_(g * 0.05);
        double after = StopProbability(model, prompts);

        // P(stop at the first token) starts near 1/2; one small plain gradient step (first order: a large one overshoots
        // through the tied embeddings) must move it the rewarded way, by about 0.025 here.
        if (preferStopping) Assert.True(after > before + 0.01, $"P(stop) {before:F4} → {after:F4}: rewarded stopping did not raise it");
        else Assert.True(after < before - 0.01, $"P(stop) {before:F4} → {after:F4}: rewarded continuing did not lower it");
    }

    [Fact]
    public void RowsLabelExactlyTheCompletionTokensUpToAndWithTheStoppingToken()
    {
        using var model = ModelLoader.Load(ModelDir);
        var tokenizer = HfTokenizer.FromDirectory(ModelDir);
        var settings = new GrpoSettings { NumGenerations = 8, MaxCompletionLength = 4, Temperature = 1.0 };
        using var batch = Source(model, tokenizer, settings, new Constant()).Batch(0, 0);
        AssertRowsTrainExactlyTheCompletions(batch, Prompts(tokenizer), settings);
    }

    /// <summary>The mean over prompts of the policy's probability that the first completion token is a stopping id.</summary>
    private static double StopProbability(CausalLM model, IReadOnlyList<PromptExample> prompts)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        model.eval();
        double sum = 0;
        foreach (var p in prompts)
        {
            var logits = model.Forward(new ForwardBatch(tensor(p.PromptIds.Select(i => (long)i).ToArray(), [1, p.PromptIds.Length]), null));
            var probs = logits[0, -1].softmax(-1);
            sum += probs[..128].sum().item<float>();
        }
        return sum / prompts.Count;
    }

    /// <summary>
    /// Each row is prompt ++ completion ++ padding; exactly the completion tokens are labelled, the stopping token
    /// included and nothing after it, so the shifted labels score every sampled token from the position that chose it.
    /// </summary>
    private static void AssertRowsTrainExactlyTheCompletions(LabeledBatch batch, IReadOnlyList<PromptExample> prompts, GrpoSettings settings)
    {
        var ids = batch.Inputs.InputIds;
        long rows = ids.shape[0], width = ids.shape[1];
        var idData = ids.data<long>().ToArray();
        var labels = batch.Labels.data<long>().ToArray();
        var mask = batch.Inputs.AttentionMask?.data<long>().ToArray();
        bool sawStop = false, sawLong = false;
        for (int r = 0; r < rows; r++)
        {
            // The training stream shuffles the prompts: the row starts with one of them, and its G rows with the same one.
            var prompt = prompts.Select(p => p.PromptIds).Single(p => p.Select((id, t) => id == idData[r * width + t]).All(x => x));
            Assert.Equal(prompt, Enumerable.Range(0, prompt.Length).Select(t => (int)idData[(r / settings.NumGenerations * settings.NumGenerations) * width + t]));
            for (int t = 0; t < prompt.Length; t++) Assert.Equal(TokenLabels.IgnoreIndex, labels[r * width + t]);
            var completion = new List<long>();
            int end = prompt.Length;
            while (end < width && labels[r * width + end] != TokenLabels.IgnoreIndex)
            {
                Assert.Equal(idData[r * width + end], labels[r * width + end]);
                completion.Add(labels[r * width + end]);
                end++;
            }
            Assert.InRange(completion.Count, 1, settings.MaxCompletionLength);
            // Stopped rows end with the stopping id; only a row cut at max_completion_length may end without one.
            int stopAt = completion.FindIndex(id => StopIds.Contains(id));
            if (stopAt >= 0) Assert.Equal(completion.Count - 1, stopAt);
            else Assert.Equal(settings.MaxCompletionLength, completion.Count);
            sawStop |= completion.Count == 1;
            sawLong |= completion.Count > 1;
            for (int t = end; t < width; t++)
            {
                Assert.Equal(TokenLabels.IgnoreIndex, labels[r * width + t]);
                if (mask is not null) Assert.Equal(0, mask[r * width + t]);
            }
        }
        Assert.True(sawStop && sawLong, "the batch holds both rewarded and unrewarded completions");
    }
}
