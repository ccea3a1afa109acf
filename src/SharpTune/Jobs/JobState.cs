namespace SharpTune.Jobs;

/// <summary>RunPod's job states; <see cref="JobStates.Name"/> gives the wire spelling (IN_QUEUE, …).</summary>
public enum JobState { InQueue, InProgress, Completed, Failed, Cancelled, TimedOut }

public static class JobStates
{
    public static string Name(JobState state) => state switch
    {
        JobState.InQueue => "IN_QUEUE",
        JobState.InProgress => "IN_PROGRESS",
        JobState.Completed => "COMPLETED",
        JobState.Failed => "FAILED",
        JobState.Cancelled => "CANCELLED",
        JobState.TimedOut => "TIMED_OUT",
        _ => throw new ArgumentOutOfRangeException(nameof(state)),
    };

    public static JobState Parse(string name) =>
        Enum.GetValues<JobState>().FirstOrDefault(s => Name(s) == name, (JobState)(-1)) is var s && Enum.IsDefined(s)
            ? s : throw new InvalidDataException($"unknown job state '{name}' in the job database");

    /// <summary>A job in one of these states will not change again unless retried.</summary>
    public static bool IsFinal(JobState state) => state is JobState.Completed or JobState.Failed or JobState.Cancelled or JobState.TimedOut;
}
