using System.Buffers.Binary;
using System.Numerics;

namespace SharpTune.Training.Logging;

/// <summary>CRC-32C (Castagnoli), the checksum TFRecord framing uses, plus TensorFlow's masking of it.</summary>
public static class Crc32C
{
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        // BitOperations.Crc32C uses the SSE4.2 / ARM CRC instructions where present and a table otherwise.
        while (data.Length >= 8)
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data[8..];
        }
        foreach (byte b in data) crc = BitOperations.Crc32C(crc, b);
        return ~crc;
    }

    /// <summary>TensorFlow masks stored CRCs so that a CRC of data that itself contains CRCs stays well distributed.</summary>
    public static uint Mask(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);

    public static uint Unmask(uint masked)
    {
        uint rotated = unchecked(masked - 0xa282ead8u);
        return (rotated >> 17) | (rotated << 15);
    }
}
