using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// Per-layer keys and values of the tokens seen so far, (B, n_kv, T, hs) each. Sliding-window layers keep the full
/// history and rely on the window mask, so every layer shares one position index.
/// </summary>
public sealed class KvCache(int layers) : IDisposable
{
    private readonly Tensor?[] keys = new Tensor?[layers];
    private readonly Tensor?[] values = new Tensor?[layers];

    /// <summary>Number of cached positions (before the current forward appends).</summary>
    public long Length { get; private set; }

    /// <summary>Appends this step's keys/values for a layer and returns the full history for attention.</summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor newKeys, Tensor newValues)
    {
        var k = keys[layer] is { } oldK ? cat([oldK, newKeys], 2) : newKeys.alias();
        var v = values[layer] is { } oldV ? cat([oldV, newValues], 2) : newValues.alias();
        keys[layer]?.Dispose();
        values[layer]?.Dispose();
        keys[layer] = k.DetachFromDisposeScope();
        values[layer] = v.DetachFromDisposeScope();
        return (k, v);
    }

    /// <summary>Called once all layers have appended the current step.</summary>
    public void Advance(long tokens) => Length += tokens;

    public void Dispose()
    {
        foreach (var t in keys.Concat(values)) t?.Dispose();
        Array.Clear(keys);
        Array.Clear(values);
    }
}
