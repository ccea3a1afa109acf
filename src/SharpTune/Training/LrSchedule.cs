namespace SharpTune.Training;

/// <summary>Learning rate at each optimizer step, as transformers' get_*_schedule_with_warmup define it.</summary>
public sealed record LrSchedule(string Kind, double PeakLr, int WarmupSteps, int TotalSteps, double MinLrRatio = 0)
{
    /// <summary>The lr used for the update of step (0-based; step 0 is the first update).</summary>
    public double At(int step)
    {
        if (Kind == "constant") return PeakLr;
        if (step < WarmupSteps) return PeakLr * step / Math.Max(1, WarmupSteps);
        if (Kind == "constant_with_warmup") return PeakLr;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Kind switch
        {
            "linear" => PeakLr * Math.Max(0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps)),
            "cosine" => PeakLr * Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * progress))),
            "cosine_with_min_lr" => PeakLr * (MinLrRatio + (1 - MinLrRatio) * Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * progress)))),
            _ => throw new InvalidInputException($"lr_scheduler: '{Kind}' is not supported; allowed: cosine, linear, constant, constant_with_warmup, cosine_with_min_lr"),
        };
    }

    /// <summary>
    /// warmup_steps wins (below 1 it is a ratio, as transformers reads a float warmup_steps); else ceil(warmup_ratio × total)
    /// like transformers.
    /// </summary>
    public static int Warmup(double? warmupSteps, double? warmupRatio, int totalSteps) => warmupSteps switch
    {
        >= 1 => (int)warmupSteps.Value,
        { } ratio => (int)Math.Ceiling(ratio * totalSteps),
        null => (int)Math.Ceiling((warmupRatio ?? 0) * totalSteps),
    };
}
