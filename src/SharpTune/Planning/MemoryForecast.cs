namespace SharpTune.Planning;

/// <summary>One line of a forecast: a component, its bytes per device, and how the figure was reached.</summary>
public sealed record MemoryComponent(string Name, long Bytes, string Detail);

/// <summary>
/// A run's predicted peak per device: the components resident at the peak (the phase that peaks: load, the backward pass,
/// the optimizer step or eval generation), the largest micro_batch_size × sequence_len that fits, and whether this one does.
/// </summary>
public sealed record MemoryForecast(
    PlanDevice Device,
    int WorldSize,
    int ZeroStage,
    string PeakPhase,
    IReadOnlyList<MemoryComponent> Components,
    IReadOnlyList<(string Phase, long Bytes)> Phases,
    long PeakBytes,
    int MicroBatchSize,
    int SequenceLen,
    IReadOnlyList<(int MicroBatchSize, int SequenceLen)> LargestFits,
    IReadOnlyList<string> Notes)
{
    public bool Fits => PeakBytes <= Device.CapacityBytes;
}
