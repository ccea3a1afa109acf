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

    /// <summary>
    /// The chunked loss (whose forward already multiplies out the gradients the backward scales) against the plain
    /// [tokens × vocab] loss: with a trained and a frozen lm_head, and with the final soft-cap (gemma2), under a
    /// non-unit incoming gradient.
    /// </summary>
    [Theory]
    [InlineData("llama", true)]
    [InlineData("llama", false)]
    [InlineData("gemma2", true)]
    public void ChunkedCrossEntropyEqualsPlainLossAndGradients(string family, bool outputTrains)
    {
        var fixture = new HfFixture(family);
        var ids = tensor(fixture.InputIds.SelectMany(r => r).ToArray(), [fixture.InputIds.Length, fixture.InputIds[0].Length]);
        var labels = tensor(fixture.Labels.SelectMany(r => r).ToArray(), [fixture.InputIds.Length, fixture.InputIds[0].Length]);
        long units = labels[.., 1..].ne(-100).sum().item<long>();
        (float Loss, Dictionary<string, Tensor> Grads) Run(bool chunked)
        {
            using var model = ModelLoader.Load(fixture.Dir);
            model.OutputWeight.requires_grad = outputTrains;
            using var loss = chunked
                ? ChunkedCrossEntropy.Sum(model, model.Hidden(new ForwardBatch(ids)), labels, chunkTokens: 7) / units
                : CausalLmLoss.Mean(model.Forward(new ForwardBatch(ids)), labels);
            loss.backward();
            var grads = model.named_parameters().Where(p => p.parameter.grad is not null).ToDictionary(p => p.name, p => p.parameter.grad!.detach().clone());
            return (loss.item<float>(), grads);
        }
        var (plainLoss, plain) = Run(chunked: false);
        var (chunkedLoss, chunked) = Run(chunked: true);

        Assert.Equal(fixture.Loss, chunkedLoss, 1e-4);
        Assert.Equal(plainLoss, chunkedLoss, 1e-5);
        Assert.Equal(plain.Keys.Order(), chunked.Keys.Order());
        var config = ModelFamilies.LoadConfig(fixture.Dir);
        Assert.Equal(outputTrains, chunked.ContainsKey(config.TieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight"));
        foreach (var (name, grad) in plain)
        {
            double relative = (chunked[name] - grad).norm().item<float>() / grad.norm().item<float>();
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
