using SharpTune.Modeling;
using SharpTune.Tests.Modeling;
using SharpTune.Training;
using static TorchSharp.torch;

namespace SharpTune.Tests.Training;

/// <summary>Chunked cross-entropy and gradient checkpointing change memory, never numbers.</summary>
public sealed class LossPathTests
{
    private readonly HfFixture fixture = new("llama");

    private (Tensor Ids, Tensor Labels) Inputs() =>
        (tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [2, 24]), tensor(fixture.Labels.SelectMany(r => r).ToArray(), [2, 24]));

    private static Dictionary<string, Tensor> Grads(CausalLM model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());

    [Fact]
    public void ChunkedCrossEntropyEqualsPlainLossAndGradients()
    {
        var (ids, labels) = Inputs();
        using var plainModel = ModelLoader.Load(fixture.Dir);
        using var plainLoss = CausalLmLoss.Mean(plainModel.Forward(new ForwardBatch(ids)), labels);
        plainLoss.backward();
        var plainGrads = Grads(plainModel);

        using var chunkedModel = ModelLoader.Load(fixture.Dir);
        var hidden = chunkedModel.Hidden(new ForwardBatch(ids));
        using var chunkedSum = ChunkedCrossEntropy.Sum(chunkedModel, hidden, labels, chunkTokens: 7);
        using var chunkedLoss = chunkedSum / 43;
        chunkedLoss.backward();

        Assert.Equal(fixture.Loss, chunkedLoss.item<float>(), 1e-4);
        Assert.Equal(plainLoss.item<float>(), chunkedLoss.item<float>(), 1e-5);
        foreach (var (name, parameter) in chunkedModel.named_parameters())
        {
            double relative = (parameter.grad! - plainGrads[name]).norm().item<float>() / plainGrads[name].norm().item<float>();
            Assert.True(relative < 1e-5, $"{name}: {relative}");
        }
    }

    /// <summary>
    /// The forward that keeps the logit gradient and the backward that recomputes it run the same chunked ops: the loss
    /// and every gradient are bit-for-bit equal, with and without the final soft-cap (gemma2), for the trained lm_head
    /// and for the rows alone.
    /// </summary>
    [Theory]
    [InlineData("llama", true)]
    [InlineData("llama", false)]
    [InlineData("gemma2", true)]
    public void KeptLogitGradientEqualsTheRecomputedOne(string family, bool outputTrains)
    {
        var fixture = new HfFixture(family);
        var ids = tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [fixture.InputIds.Length, fixture.InputIds[0].Length]);
        var labels = tensor(fixture.Labels.SelectMany(r => r).ToArray(), [fixture.InputIds.Length, fixture.InputIds[0].Length]);
        (float Loss, Dictionary<string, Tensor> Grads) Run(long keptGradientBytes)
        {
            using var model = ModelLoader.Load(fixture.Dir);
            model.OutputWeight.requires_grad = outputTrains;
            using var sum = ChunkedCrossEntropy.Sum(model, model.Hidden(new ForwardBatch(ids)), labels, chunkTokens: 5, keptGradientBytes);
            using var scaled = sum * 0.37;
            scaled.backward();
            var grads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
            return (sum.item<float>(), grads);
        }
        var config = ModelFamilies.LoadConfig(fixture.Dir);
        Assert.True(ChunkedCrossEntropy.KeepsGradient(ids.numel(), config.VocabSize), "the fixture's logit gradient is under the limit");
        var (keptLoss, kept) = Run(ChunkedCrossEntropy.KeptGradientBytes);
        var (recomputedLoss, recomputed) = Run(keptGradientBytes: 0);

        Assert.Equal(recomputedLoss, keptLoss);
        Assert.Equal(recomputed.Keys.Order(), kept.Keys.Order());
        Assert.Equal(outputTrains, kept.ContainsKey(config.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"));
        foreach (var (name, grad) in recomputed)
            Assert.True(grad.allclose(kept[name], 0, 0), $"{name}: max |difference| {(grad - kept[name]).abs().max().item<float>()}");
    }

    [Fact]
    public void GradientCheckpointingGivesTheSameGradients()
    {
        var (ids, labels) = Inputs();
        using var model = ModelLoader.Load(fixture.Dir);
        model.train();
        using var loss = CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), labels);
        loss.backward();
        var expected = Grads(model);

        using var checkpointed = ModelLoader.Load(fixture.Dir);
        checkpointed.train();
        GradientCheckpointing.Enable(checkpointed);
        using var loss2 = CausalLmLoss.Mean(checkpointed.Forward(new ForwardBatch(ids)), labels);
        loss2.backward();
        Assert.Equal(loss.item<float>(), loss2.item<float>(), 1e-6);
        foreach (var (name, parameter) in checkpointed.named_parameters())
        {
            double relative = (parameter.grad! - expected[name]).norm().item<float>() / expected[name].norm().item<float>();
            Assert.True(relative < 1e-5, $"{name}: {relative}");
        }
    }
}
