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
