using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace SharpTune.Tests.Training.Logging;

/// <summary>
/// Minimal PNG decoder for tests: checks the signature and every chunk CRC, inflates IDAT and undoes the five row filters.
/// 8-bit RGB and RGBA, non-interlaced — what Skia writes.
/// </summary>
internal sealed class PngImage
{
    public static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    public required int Width { get; init; }
    public required int Height { get; init; }
    public required int Channels { get; init; }
    public required byte[] Pixels { get; init; }

    public (byte R, byte G, byte B) At(int x, int y)
    {
        int i = (y * Width + x) * Channels;
        return (Pixels[i], Pixels[i + 1], Pixels[i + 2]);
    }

    public static PngImage Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (!bytes.AsSpan(0, 8).SequenceEqual(Signature)) throw new InvalidDataException("not a PNG signature");
        int offset = 8, width = 0, height = 0, channels = 0;
        using var idat = new MemoryStream();
        while (offset < bytes.Length)
        {
            int length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(offset));
            string type = Encoding.ASCII.GetString(bytes, offset + 4, 4);
            var body = bytes.AsSpan(offset + 8, length);
            uint crc = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(offset + 8 + length));
            if (Crc32(bytes.AsSpan(offset + 4, 4 + length)) != crc) throw new InvalidDataException($"bad CRC in {type}");
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(body);
                height = BinaryPrimitives.ReadInt32BigEndian(body[4..]);
                if (body[8] != 8 || body[12] != 0) throw new InvalidDataException("only 8-bit non-interlaced");
                channels = body[9] switch { 2 => 3, 6 => 4, _ => throw new InvalidDataException($"color type {body[9]}") };
            }
            else if (type == "IDAT") idat.Write(body);
            else if (type == "IEND") break;
            offset += 12 + length;
        }
        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(inflated);
        var raw = inflated.ToArray();
        int stride = width * channels;
        var pixels = new byte[height * stride];
        for (int y = 0; y < height; y++)
        {
            byte filter = raw[y * (stride + 1)];
            for (int x = 0; x < stride; x++)
            {
                int a = x >= channels ? pixels[y * stride + x - channels] : 0;
                int b = y > 0 ? pixels[(y - 1) * stride + x] : 0;
                int c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels] : 0;
                int value = raw[y * (stride + 1) + 1 + x];
                value += filter switch
                {
                    0 => 0, 1 => a, 2 => b, 3 => (a + b) / 2, 4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"filter {filter}"),
                };
                pixels[y * stride + x] = (byte)value;
            }
        }
        return new PngImage { Width = width, Height = height, Channels = channels, Pixels = pixels };
    }

    private static uint Crc32(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
        }
        return ~crc;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
