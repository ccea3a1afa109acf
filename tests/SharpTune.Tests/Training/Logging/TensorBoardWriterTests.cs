using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using SharpTune.Training;
using SharpTune.Training.Logging;

namespace SharpTune.Tests.Training.Logging;

public sealed class TensorBoardWriterTests
{
    private static readonly Dictionary<string, double> NoMetrics = [];

    [Fact]
    public void Crc32CMatchesTheStandardCheckValue()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0u, Crc32C.Compute([]));
    }

    [Fact]
    public void Crc32CMatchesABitwiseReferenceAtEveryLengthAndMaskRoundTrips()
    {
        var random = new Random(7);
        for (int length = 0; length < 40; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            uint crc = Crc32C.Compute(data);
            Assert.Equal(BitwiseCrc32C(data), crc);
            Assert.Equal(crc, Crc32C.Unmask(Crc32C.Mask(crc)));
        }
        // Mask of 0: rotate(0) + 0xa282ead8.
        Assert.Equal(0xa282ead8u, Crc32C.Mask(0));
        Assert.Equal(unchecked(((0xE3069283u >> 15) | (0xE3069283u << 17)) + 0xa282ead8u), Crc32C.Mask(0xE3069283u));
    }

    [Fact]
    public void EventFileReadsBackWithValidFramingTagsStepsAndValues()
    {
        var dir = TestPaths.TempDir();
        var time = new ManualTime(new DateTimeOffset(2026, 11, 23, 11, 50, 0, TimeSpan.Zero));
        string path;
        using (var writer = new TensorBoardWriter(dir, time, host: "testhost"))
        {
            path = writer.EventFilePath;
            time.Advance(TimeSpan.FromSeconds(1.5));
            writer.OnLog(new TrainState(), new StepLog(10, 2.5, 0.75, 3e-4, 1234.5, 5120, 0.25, new Dictionary<string, double> { ["accuracy"] = 0.125 }));
            time.Advance(TimeSpan.FromSeconds(2));
            writer.OnEval(new TrainState(), new EvalResult(10, 2.0, Math.Exp(2.0), 999, NoMetrics));

            // Flushed per record: a reader sees every record while the writer is still open (as after a crash).
            Assert.Equal(3, ReadEvents(path).Count);
            writer.OnLog(new TrainState(), new StepLog(20, 1.25, 0.5, 1.5e-4, 2000, 10240, 0.5, NoMetrics));
        }

        Assert.Equal(Path.Combine(dir, "runs", "20261123-115000_testhost", "events.out.tfevents.1795434600.testhost"), path);
        var events = ReadEvents(path);
        Assert.Equal(4, events.Count);

        Assert.Equal("brain.Event:2", events[0].FileVersion);
        Assert.Equal(0, events[0].Step);
        Assert.Equal(1795434600.0, events[0].WallTime);
        Assert.Empty(events[0].Values);

        Assert.Equal(10, events[1].Step);
        Assert.Equal(1795434601.5, events[1].WallTime);
        Assert.Null(events[1].FileVersion);
        Assert.Equal(
            [("train/loss", 2.5f), ("train/learning_rate", 3e-4f), ("train/grad_norm", 0.75f), ("train/tokens_per_second", 1234.5f),
             ("train/epoch", 0.25f), ("train/accuracy", 0.125f)],
            events[1].Values);

        Assert.Equal(10, events[2].Step);
        Assert.Equal(1795434603.5, events[2].WallTime);
        Assert.Equal([("eval/loss", 2.0f), ("eval/perplexity", (float)Math.Exp(2.0))], events[2].Values);

        Assert.Equal(20, events[3].Step);
        Assert.Equal(1.25f, events[3].Values.Single(v => v.Tag == "train/loss").Value);
    }

    [Fact]
    public void FirstRecordHasTheExactTfRecordBytes()
    {
        var dir = TestPaths.TempDir();
        string path;
        using (var writer = new TensorBoardWriter(dir, new ManualTime(DateTimeOffset.FromUnixTimeSeconds(1)), host: "h")) path = writer.EventFilePath;
        var bytes = File.ReadAllBytes(path);
        // Event{wall_time=1.0 (tag 0x09 + 8 bytes), step=0 (0x10 0x00), file_version (0x1a, len 13, "brain.Event:2")} = 26 bytes.
        Assert.Equal(12 + 26 + 4, bytes.Length);
        Assert.Equal(26ul, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.Equal(new byte[] { 0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x10, 0x00, 0x1A, 13 }, bytes[12..25]);
        Assert.Equal("brain.Event:2", Encoding.ASCII.GetString(bytes, 25, 13));
    }

    [Fact]
    public void ResumeContinuesTheNewestRunWithSessionStartAtTheCheckpointStep()
    {
        var dir = TestPaths.TempDir();
        var time = new ManualTime(new DateTimeOffset(2026, 11, 23, 11, 50, 0, TimeSpan.Zero));
        Directory.CreateDirectory(Path.Combine(dir, "runs", "20261122-080000_other"));
        string firstRun, firstFile;
        using (var writer = new TensorBoardWriter(dir, time, host: "h"))
        {
            (firstRun, firstFile) = (writer.RunDirectory, writer.EventFilePath);
            writer.OnLog(new TrainState(), new StepLog(5, 1.0, 1, 1e-4, 1, 1, 0.1, NoMetrics));
        }
        // Same second, same host: the resumed writer gets its own file beside the first one.
        using (var writer = new TensorBoardWriter(dir, time, host: "h", resumedAtStep: 3))
        {
            Assert.Equal(firstRun, writer.RunDirectory);
            Assert.Equal(firstFile + ".1", writer.EventFilePath);
            writer.OnLog(new TrainState(), new StepLog(4, 0.5, 1, 1e-4, 1, 1, 0.1, NoMetrics));
        }
        Assert.Equal(Path.Combine(dir, "runs", "20261123-115000_h"), firstRun);
        var resumed = ReadEvents(firstFile + ".1");
        Assert.Equal([0L, 3, 4], resumed.Select(e => e.Step));
        Assert.Equal("brain.Event:2", resumed[0].FileVersion);
        Assert.Equal(1, resumed[1].SessionStatus); // SessionLog.START: TensorBoard purges this run's points at step >= 3
        Assert.Empty(resumed[1].Values);
        Assert.Equal([("train/loss", 0.5f)], resumed[2].Values.Take(1));
        Assert.Null(ReadEvents(firstFile)[1].SessionStatus);
    }

    internal sealed record TbEvent(double WallTime, long Step, string? FileVersion, List<(string Tag, float Value)> Values, int? SessionStatus = null);

    /// <summary>An independent reader: TFRecord framing with both CRCs checked, then the Event/Summary/Value fields.</summary>
    internal static List<TbEvent> ReadEvents(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        var events = new List<TbEvent>();
        int offset = 0;
        while (offset < bytes.Length)
        {
            var header = bytes.AsSpan(offset, 8);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(header);
            Assert.Equal(MaskedBitwise(header), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 8)));
            var data = bytes.AsSpan(offset + 12, (int)length);
            Assert.Equal(MaskedBitwise(data), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset + 12 + (int)length)));
            events.Add(DecodeEvent(data.ToArray()));
            offset += 12 + (int)length + 4;
        }
        Assert.Equal(bytes.Length, offset);
        return events;
    }

    private static TbEvent DecodeEvent(byte[] data)
    {
        var input = new CodedInputStream(data);
        double wallTime = 0;
        long step = 0;
        string? fileVersion = null;
        var values = new List<(string, float)>();
        int? sessionStatus = null;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: wallTime = input.ReadDouble(); break;
                case 2: step = input.ReadInt64(); break;
                case 3: fileVersion = input.ReadString(); break;
                case 5:
                    var summary = new CodedInputStream(input.ReadBytes().ToByteArray());
                    uint summaryTag;
                    while ((summaryTag = summary.ReadTag()) != 0)
                    {
                        Assert.Equal(1, WireFormat.GetTagFieldNumber(summaryTag));
                        var value = new CodedInputStream(summary.ReadBytes().ToByteArray());
                        string name = "";
                        float simple = float.NaN;
                        uint valueTag;
                        while ((valueTag = value.ReadTag()) != 0)
                        {
                            if (WireFormat.GetTagFieldNumber(valueTag) == 1) name = value.ReadString();
                            else if (valueTag == WireFormat.MakeTag(2, WireFormat.WireType.Fixed32)) simple = value.ReadFloat();
                            else value.SkipLastField();
                        }
                        values.Add((name, simple));
                    }
                    break;
                case 6:
                    var sessionLog = new CodedInputStream(input.ReadBytes().ToByteArray());
                    uint sessionTag;
                    while ((sessionTag = sessionLog.ReadTag()) != 0)
                    {
                        if (sessionTag == WireFormat.MakeTag(1, WireFormat.WireType.Varint)) sessionStatus = sessionLog.ReadEnum();
                        else sessionLog.SkipLastField();
                    }
                    break;
                default: input.SkipLastField(); break;
            }
        }
        return new TbEvent(wallTime, step, fileVersion, values, sessionStatus);
    }

    private static uint MaskedBitwise(ReadOnlySpan<byte> data)
    {
        uint crc = BitwiseCrc32C(data);
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }

    private static uint BitwiseCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }
}
