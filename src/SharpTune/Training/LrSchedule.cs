using SharpTune.Config;

namespace SharpTune.Training;

/// <summary>Learning rate at each optimizer step, as transformers' get_*_schedule_with_warmup define it.</summary>
public sealed record LrSchedule(LrSchedulerType Kind, double PeakLr, int WarmupSteps, int TotalSteps, double MinLrRatio = 0)
{
    /// <summary>The scheduler's name as lr_scheduler spells it (scheduler.json's kind).</summary>
    public string Name => ConfigNames.ToSnake(Kind.ToString());

    /// <summary>The lr used for the update of step (0-based; step 0 is the first update).</summary>
    public double At(int step)
    {
        if (Kind == LrSchedulerType.Constant) return PeakLr;
        if (step < WarmupSteps) return PeakLr * step / Math.Max(1, WarmupSteps);
        if (Kind == LrSchedulerType.ConstantWithWarmup) return PeakLr;
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Kind switch
        {
            LrSchedulerType.Linear => PeakLr * Math.Max(0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps)),
            LrSchedulerType.Cosine => PeakLr * Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * progress))),
            LrSchedulerType.CosineWithMinLr => PeakLr * (MinLrRatio + (1 - MinLrRatio) * Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * progress)))),
            _ => throw new InvalidInputException($"lr_scheduler: {Name} is not supported; allowed: cosine, linear, constant, constant_with_warmup, cosine_with_min_lr"),
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
