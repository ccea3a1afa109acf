using System.Globalization;
using Google.Protobuf;

namespace SharpTune.Training.Logging;

/// <summary>
/// Writes TensorBoard scalars (train/loss, train/learning_rate, train/grad_norm, train/tokens_per_second, train/epoch,
/// eval/loss, eval/perplexity and every extra metric by name) to
/// <c>&lt;outputDir&gt;/runs/&lt;yyyyMMdd-HHmmss&gt;_&lt;host&gt;/events.out.tfevents.&lt;unix seconds&gt;.&lt;host&gt;</c>.
/// A fresh run gets its own run folder; a resumed one continues the newest folder (see the constructor).
/// The Event and Summary protobufs are encoded by hand with <see cref="CodedOutputStream"/>; there is no generated code.
/// </summary>
public sealed class TensorBoardWriter : ITrainerCallbacks, IDisposable
{
    private readonly TfRecordWriter records;
    private readonly TimeProvider time;

    /// <param name="resumedAtStep">
    /// Set when resuming from a checkpoint: the writer continues in the newest existing run folder and first writes a
    /// SessionLog START event at this step, which makes TensorBoard drop that run's points at or past it (logged after
    /// the checkpoint by the interrupted process), so the curves read as one run.
    /// </param>
    public TensorBoardWriter(string outputDir, TimeProvider? time = null, string? host = null, int? resumedAtStep = null)
    {
        this.time = time ?? TimeProvider.System;
        host ??= Environment.MachineName;
        var now = this.time.GetUtcNow();
        var runs = Path.Combine(outputDir, "runs");
        string? existing = resumedAtStep is null || !Directory.Exists(runs) ? null
            : Directory.GetDirectories(runs).Order(StringComparer.Ordinal).LastOrDefault();
        RunDirectory = existing ?? Path.Combine(runs, now.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "_" + host);
        Directory.CreateDirectory(RunDirectory);
        (EventFilePath, var stream) = CreateEventFile(RunDirectory, $"events.out.tfevents.{now.ToUnixTimeSeconds()}.{host}");
        records = new TfRecordWriter(stream);
        records.Write(EncodeEvent(WallTime(), 0, fileVersion: "brain.Event:2", scalars: null));
        if (resumedAtStep is { } step) records.Write(EncodeSessionStart(WallTime(), step));
    }

    // CreateNew: a second writer started within the same second must not share (and interleave) one file.
    private static (string, FileStream) CreateEventFile(string directory, string name)
    {
        for (int attempt = 0; ; attempt++)
        {
            var path = Path.Combine(directory, attempt == 0 ? name : $"{name}.{attempt}");
            try
            {
                return (path, new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read));
            }
            catch (IOException) when (File.Exists(path) && attempt < 100)
            {
            }
        }
    }

    public string RunDirectory { get; }
    public string EventFilePath { get; }

    public void OnLog(TrainState state, StepLog log)
    {
        var scalars = new List<(string, double)>
        {
            ("train/loss", log.Loss), ("train/learning_rate", log.LearningRate), ("train/grad_norm", log.GradNorm),
            ("train/tokens_per_second", log.TokensPerSecond), ("train/epoch", log.Epoch),
        };
        scalars.AddRange(log.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => ("train/" + m.Key, m.Value)));
        WriteScalars(log.Step, scalars);
    }

    public void OnEval(TrainState state, EvalResult result)
    {
        var scalars = new List<(string, double)> { ("eval/loss", result.Loss) };
        if (result.Perplexity is { } perplexity) scalars.Add(("eval/perplexity", perplexity));
        scalars.AddRange(result.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal).Select(m => ("eval/" + m.Key, m.Value)));
        WriteScalars(result.Step, scalars);
    }

    public void OnSave(TrainState state) { }

    /// <summary>One Event per call, all scalars of that step in one Summary.</summary>
    public void WriteScalars(long step, IReadOnlyList<(string Tag, double Value)> scalars) =>
        records.Write(EncodeEvent(WallTime(), step, fileVersion: null, scalars));

    public void Dispose() => records.Dispose();

    private double WallTime() => time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;

    // Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
    // Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
    internal static byte[] EncodeEvent(double wallTime, long step, string? fileVersion, IReadOnlyList<(string Tag, double Value)>? scalars)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        output.WriteTag(1, WireFormat.WireType.Fixed64);
        output.WriteDouble(wallTime);
        output.WriteTag(2, WireFormat.WireType.Varint);
        output.WriteInt64(step);
        if (fileVersion is not null)
        {
            output.WriteTag(3, WireFormat.WireType.LengthDelimited);
            output.WriteString(fileVersion);
        }
        if (scalars is not null)
        {
            output.WriteTag(5, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(EncodeSummary(scalars)));
        }
        output.Flush();
        return buffer.ToArray();
    }

    // Event { ...; SessionLog session_log = 6; }   SessionLog { SessionStatus status = 1; }  with START = 1.
    internal static byte[] EncodeSessionStart(double wallTime, long step)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        output.WriteTag(1, WireFormat.WireType.Fixed64);
        output.WriteDouble(wallTime);
        output.WriteTag(2, WireFormat.WireType.Varint);
        output.WriteInt64(step);
        output.WriteTag(6, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(0x08, 0x01));
        output.Flush();
        return buffer.ToArray();
    }

    private static byte[] EncodeSummary(IReadOnlyList<(string Tag, double Value)> scalars)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer);
        foreach (var (tag, value) in scalars)
        {
            using var valueBuffer = new MemoryStream();
            var valueOutput = new CodedOutputStream(valueBuffer);
            valueOutput.WriteTag(1, WireFormat.WireType.LengthDelimited);
            valueOutput.WriteString(tag);
            valueOutput.WriteTag(2, WireFormat.WireType.Fixed32);
            valueOutput.WriteFloat((float)value);
            valueOutput.Flush();
            output.WriteTag(1, WireFormat.WireType.LengthDelimited);
            output.WriteBytes(ByteString.CopyFrom(valueBuffer.ToArray()));
        }
        output.Flush();
        return buffer.ToArray();
    }
}
