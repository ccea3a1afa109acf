using static TorchSharp.torch;

namespace SharpTune.Modeling;

/// <summary>
/// Additive attention masks (0 = attend, dtype minimum = blocked) as transformers' eager path builds them, plus
/// segment ids so that documents packed into one row never attend to each other.
/// </summary>
public static class AttentionMask
{
    /// <param name="queryLength">T: tokens in this forward.</param>
    /// <param name="pastLength">tokens already in the KV cache.</param>
    /// <param name="attentionMask">(B, past+T) 1 = real token, 0 = padding; null = all real.</param>
    /// <param name="segmentIds">(B, T) document id per token; tokens attend only within their document.</param>
    /// <param name="window">sliding window: query i sees keys j with i − j &lt; window.</param>
    /// <returns>(B or 1, 1, T, past+T)</returns>
    public static Tensor Build(long queryLength, long pastLength, Tensor? attentionMask, Tensor? segmentIds, int? window, ScalarType dtype, Device device)
    {
        using var scope = NewDisposeScope();
        long keyLength = pastLength + queryLength;
        var queryIndex = arange(pastLength, keyLength, int64, device).view(queryLength, 1);
        var keyIndex = arange(0, keyLength, int64, device).view(1, keyLength);
        var allowed = keyIndex <= queryIndex;
        if (window is { } w) allowed = allowed & (queryIndex - keyIndex < w);
        allowed = allowed.view(1, 1, queryLength, keyLength);
        if (attentionMask is not null)
        {
            if (attentionMask.shape[^1] != keyLength)
                throw new InvalidInputException($"attention_mask has {attentionMask.shape[^1]} columns, expected {keyLength} (cached + new tokens)");
            allowed = allowed & attentionMask.to(@bool).view(attentionMask.shape[0], 1, 1, keyLength);
        }
        if (segmentIds is not null)
        {
            if (pastLength != 0) throw new InvalidOperationException("segment ids are for packed training rows, not cached generation");
            var seg = segmentIds.to(int64);
            allowed = allowed & (seg.view(seg.shape[0], 1, queryLength, 1) == seg.view(seg.shape[0], 1, 1, queryLength));
        }
        var mask = zeros(allowed.shape, dtype, device).masked_fill(allowed.logical_not(), MinValue(dtype));
        return mask.MoveToOuterDisposeScope();
    }

    private static double MinValue(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => double.MinValue,
        ScalarType.Float16 => -65504.0,
        ScalarType.BFloat16 => -3.3895313892515355e38,
        _ => float.MinValue,
    };
}
