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
        var window = new ReadWindow(stream, MaxLineBytes);
        long number = 0;
        bool first = true;
        while (true)
        {
            int newline = window.Unread.IndexOf((byte)'\n');
            if (newline < 0 && !window.AtEnd)
            {
                window.Fill(() => $"{file}:{number + 1}: line longer than {MaxLineBytes >> 20} MiB; expected a text file with one row per line");
                if (first && (window.End >= 2 || window.AtEnd))
                {
                    first = false;
                    window.Start = SkipByteOrderMark(file, window.Bytes.AsSpan(0, window.End));
                }
                continue;
            }
            int lineStart = window.Start, lineEnd;
            bool terminated = newline >= 0;
            if (terminated)
            {
                lineEnd = window.Start + newline;
                window.Start = lineEnd + 1;
            }
            else
            {
                if (window.Start == window.End) yield break;
                lineEnd = window.End;
                window.Start = window.End;
            }
            var bytes = window.Bytes;
            if (lineEnd > lineStart && bytes[lineEnd - 1] == '\r') lineEnd--;
            number++;
            yield return new ByteLine(bytes.AsMemory(lineStart, lineEnd - lineStart), number, window.Offset + lineStart, terminated);
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
