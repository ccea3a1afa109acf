using static TorchSharp.torch;

namespace SharpTune.Training;

/// <summary>NEFTune (Jain et al. 2023): uniform noise of scale α/√(T·H) on the input embeddings, training only.</summary>
public static class Neftune
{
    public static Func<Tensor, Tensor> Noise(double alpha) => embeddings =>
    {
        double magnitude = alpha / Math.Sqrt(embeddings.shape[1] * embeddings.shape[2]);
        return embeddings + empty_like(embeddings).uniform_(-magnitude, magnitude);
    };
}
