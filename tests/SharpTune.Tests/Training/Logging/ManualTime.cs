namespace SharpTune.Tests.Training.Logging;

/// <summary>A clock the test moves by hand (wall time and the monotonic timestamp move together).</summary>
internal sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset now = start;
    private long ticks;

    public void Advance(TimeSpan by)
    {
        now += by;
        ticks += by.Ticks;
    }

    public override DateTimeOffset GetUtcNow() => now;
    public override long GetTimestamp() => ticks;
    public override long TimestampFrequency => TimeSpan.TicksPerSecond;
}
