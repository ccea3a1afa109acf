namespace SharpTune.Data;

/// <summary>One line of a text file as raw bytes (no '\n', no trailing '\r'), valid only until the next line is read.</summary>
public readonly record struct ByteLine(ReadOnlyMemory<byte> Bytes, long Number, long Offset, bool Terminated);

/// <summary>
/// Streams the lines of a file as bytes, so that each line can be checked and decoded on its own: a bad byte is reported
/// at its offset and spoils one row, not the rest of the file (a StreamReader would replace it with U+FFFD unnoticed).
/// </summary>
public static class Utf8Lines
{
    /// <summary>Longer lines are refused: a file with none is binary, not a line-based data file.</summary>
    public const int MaxLineBytes = 512 << 20;

    public static IEnumerable<ByteLine> Read(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        var buffer = new byte[1 << 16];
        int start = 0, end = 0;
        long bufferOffset = 0, number = 0;
        bool eof = false, first = true;
        while (true)
        {
            int newline = buffer.AsSpan(start, end - start).IndexOf((byte)'\n');
            if (newline < 0 && !eof)
            {
                if (start > 0)
                {
                    Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                    bufferOffset += start;
                    end -= start;
                    start = 0;
                }
                if (end == buffer.Length)
                {
                    if (buffer.Length >= MaxLineBytes)
                        throw new InvalidInputException($"{file}:{number + 1}: line longer than {MaxLineBytes >> 20} MiB; expected a text file with one row per line");
                    Array.Resize(ref buffer, Math.Min(buffer.Length * 2, MaxLineBytes));
                }
                int read = stream.Read(buffer, end, buffer.Length - end);
                if (read == 0) eof = true;
                end += read;
                if (first && (end >= 2 || eof))
                {
                    first = false;
                    start = SkipByteOrderMark(file, buffer.AsSpan(0, end));
                }
                continue;
            }
            int lineStart = start, lineEnd;
            bool terminated = newline >= 0;
            if (terminated)
            {
                lineEnd = start + newline;
                start = lineEnd + 1;
            }
            else
            {
                if (start == end) yield break;
                lineEnd = end;
                start = end;
            }
            if (lineEnd > lineStart && buffer[lineEnd - 1] == '\r') lineEnd--;
            number++;
            yield return new ByteLine(buffer.AsMemory(lineStart, lineEnd - lineStart), number, bufferOffset + lineStart, terminated);
        }
    }

    /// <summary>True for a line of spaces, tabs and carriage returns only.</summary>
    public static bool IsBlank(ReadOnlySpan<byte> line) => line.IndexOfAnyExcept(" \t\r"u8) < 0;

    /// <summary>Bytes to skip at the start of the file: a UTF-8 byte-order mark; a UTF-16/32 one is refused with what to do.</summary>
    private static int SkipByteOrderMark(string file, ReadOnlySpan<byte> head)
    {
        if (head.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) return 3;
        if (head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]) || head.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]))
            throw new InvalidInputException($"{file}: is UTF-16 or UTF-32 text (byte-order mark 0x{head[0]:X2} 0x{head[1]:X2}); expected UTF-8: convert it (iconv -f UTF-16 -t UTF-8)");
        return 0;
    }
}
