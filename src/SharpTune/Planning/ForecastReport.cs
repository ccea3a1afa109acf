using SharpTune.Config;
using SharpTune.Modeling;

namespace SharpTune.Planning;

/// <summary>The forecast as `plan` and `validate` print it, and the device a config's own `device` key means.</summary>
public static class ForecastReport
{
    public static IEnumerable<string> Lines(MemoryForecast f)
    {
        string where = f.WorldSize > 1 ? $"per device, {f.WorldSize} processes{(f.ZeroStage > 0 ? $", ZeRO-{f.ZeroStage}" : ", replicated (ZeRO off)")}" : "one process";
        yield return $"memory plan for {f.Device.Name} ({PlanDevice.Format(f.Device.CapacityBytes)}), {where}, micro_batch_size {f.MicroBatchSize} × sequence_len {f.SequenceLen}";
        foreach (var c in f.Components.Where(c => c.Bytes > 0))
            yield return $"  {c.Name,-28} {PlanDevice.Format(c.Bytes),12}  {c.Detail}";
        yield return "  phases: " + string.Join(", ", f.Phases.Select(p => $"{p.Phase} {PlanDevice.Format(p.Bytes)}"));
        yield return $"  predicted peak {PlanDevice.Format(f.PeakBytes)} ({f.PeakPhase}) of {PlanDevice.Format(f.Device.CapacityBytes)}: {(f.Fits ? "fits" : "does NOT fit")}";
        yield return f.LargestFits.Count == 0
            ? "  largest micro_batch_size × sequence_len that fits: none (the weights and state alone exceed the device)"
            : "  largest that fits: " + string.Join(", ", f.LargestFits.Select(x => $"{x.MicroBatchSize} × {x.SequenceLen}"));
        foreach (var note in f.Notes) yield return $"  note: {note}";
    }

    /// <summary>The forecast for the device the config's `device` key names: a CUDA GPU by its NVML name and memory, else this machine's CPU.</summary>
    public static MemoryForecast ForConfigDevice(TrainConfig config, ModelConfig model, bool cpuPrefersBf16)
    {
        PlanDevice device;
        if (config.Device.StartsWith("cuda", StringComparison.OrdinalIgnoreCase))
        {
            int index = config.Device.Contains(':') ? int.Parse(config.Device.Split(':')[1]) : 0;
            device = Native.Nvml.MemoryOf(index) is { } memory
                ? new PlanDevice(Native.Nvml.NameOf(index) ?? $"cuda:{index}", memory.Total, PlanDevice.CudaContextBytes, true, true)
                : throw new InvalidInputException($"device: {config.Device}: no NVIDIA GPU is visible here; plan it with `sharptune plan CONFIG --gpu NAME`");
        }
        else device = PlanDevice.Parse("cpu", cpuPrefersBf16);
        return new MemoryPlanner(config, model, device).Forecast();
    }
}
