using static TorchSharp.torch;

namespace SharpTune.Tests.Native;

public sealed class NativeTensorTests
{
    [Fact]
    public void MatmulBackwardGivesAnalyticGradients()
    {
        // y = sum(A @ B): dy/dA = rowsum(B) broadcast, dy/dB = colsum(A) broadcast.
        using var a = tensor(new float[] { 1, 2, 3, 4 }, 2, 2).requires_grad_();
        using var b = tensor(new float[] { 5, 6, 7, 8 }, 2, 2).requires_grad_();
        using var y = a.matmul(b).sum();
        y.backward();
        Assert.Equal(1 * 5 + 2 * 7 + 1 * 6 + 2 * 8 + 3 * 5 + 4 * 7 + 3 * 6 + 4 * 8, y.item<float>());
        Assert.Equal(new float[] { 11, 15, 11, 15 }, a.grad!.data<float>().ToArray());
        Assert.Equal(new float[] { 4, 4, 6, 6 }, b.grad!.data<float>().ToArray());
    }
}
