using System.Buffers.Binary;

namespace SharpTune.Training.Logging;

/// <summary>
/// TFRecord framing: uint64 length (LE), masked CRC-32C of those 8 bytes, the payload, masked CRC-32C of the payload.
/// Each record is flushed as soon as it is written so a crashed run still leaves a file of whole, readable records.
/// </summary>
public sealed class TfRecordWriter(Stream stream) : IDisposable
{
    public void Write(ReadOnlySpan<byte> payload)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Mask(Crc32C.Compute(header[..8])));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Mask(Crc32C.Compute(payload)));
        stream.Write(header);
        stream.Write(payload);
        stream.Write(footer);
        stream.Flush();
    }

    public void Dispose() => stream.Dispose();
}
